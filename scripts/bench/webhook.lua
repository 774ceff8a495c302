-- wrk script: POST a signed push delivery, under a fresh X-GitHub-Delivery
-- each time (the signature covers only the body, so it stays valid).
local body_file = assert(os.getenv("BENCH_BODY"), "BENCH_BODY")
local signature = assert(os.getenv("BENCH_SIGNATURE"), "BENCH_SIGNATURE")
local run = os.getenv("BENCH_RUN") or "0"

local file = assert(io.open(body_file, "rb"))
local body = file:read("*a")
file:close()

local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local sent = 0
function request()
  sent = sent + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = "GitHub-Hookshot/bench",
    ["X-GitHub-Event"] = "push",
    ["X-GitHub-Delivery"] = string.format("bench-%s-%d-%d", run, tid, sent),
    ["X-Hub-Signature-256"] = signature,
  }
  return wrk.format("POST", nil, headers, body)
end

-- wrk's own report stops at p99; the rarer stalls show further out.
function done(summary, latency, requests)
  io.write(string.format("p99.9 %.2fms, max %.2fms, %d requests, %d errors\n",
    latency:percentile(99.9) / 1000, latency.max / 1000, summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
