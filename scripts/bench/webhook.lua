-- wrk script: POST signed push deliveries, each a distinct body (so none is
-- a replay) under a fresh X-GitHub-Delivery. The bodies are the sample push
-- with `"bench_seq": "NNNNNNNN"` first; their signatures are made beforehand
-- (BENCH_SIGNATURES, one per line, in sequence order), since wrk has no HMAC.
local prefix = '{"bench_seq": "'
local rest_file = assert(os.getenv("BENCH_REST"), "BENCH_REST")
local signatures_file = assert(os.getenv("BENCH_SIGNATURES"), "BENCH_SIGNATURES")
local run = os.getenv("BENCH_RUN") or "0"

local file = assert(io.open(rest_file, "rb"))
local rest = file:read("*a")
file:close()
local signatures = {}
for line in io.lines(signatures_file) do
  signatures[#signatures + 1] = line
end

local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local sent = 0
function request()
  -- Thread t sends t, t + 2, t + 4…: the two threads never share a body.
  local seq = (sent * 2 + tid) % #signatures
  sent = sent + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = "GitHub-Hookshot/bench",
    ["X-GitHub-Event"] = "push",
    ["X-GitHub-Delivery"] = string.format("bench-%s-%d-%d", run, tid, sent),
    ["X-Hub-Signature-256"] = signatures[seq + 1],
  }
  return wrk.format("POST", nil, headers, prefix .. string.format("%08d", seq) .. '", ' .. rest)
end

-- wrk's own report stops at p99; the rarer stalls show further out.
function done(summary, latency, requests)
  if summary.requests > #signatures then
    io.write(string.format("WARNING: %d requests for %d bodies: the rest were replays; raise BODIES\n",
      summary.requests, #signatures))
  end
  io.write(string.format("p99.9 %.2fms, max %.2fms, %d requests, %d errors (a 401 counts)\n",
    latency:percentile(99.9) / 1000, latency.max / 1000, summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
