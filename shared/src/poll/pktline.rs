//! Git's smart-HTTP ref advertisement (`GET <repo>/info/refs?service=git-upload-pack`),
//! read without a `git` binary: pkt-lines of `<sha> <ref>\0<capabilities>`.

/// The refs a server advertises, as `(ref, sha)`; an error names what is wrong.
pub fn advertised_refs(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut refs = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err("a truncated pkt-line length".into());
        }
        let length = std::str::from_utf8(&rest[..4])
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok())
            .ok_or("a pkt-line length that is not hex")?;
        if length == 0 {
            // A flush-pkt: separates the service line from the refs, and ends them.
            rest = &rest[4..];
            continue;
        }
        if length < 4 || length > rest.len() {
            return Err(format!("a pkt-line of {length} bytes where {} remain", rest.len()));
        }
        let line = &rest[4..length];
        rest = &rest[length..];
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches('\n');
        if line.starts_with('#') {
            continue; // "# service=git-upload-pack"
        }
        let line = line.split('\0').next().unwrap_or_default();
        if let Some((sha, name)) = line.split_once(' ')
            && sha.len() >= 40
            && sha.bytes().all(|b| b.is_ascii_hexdigit())
        {
            refs.push((name.to_owned(), sha.to_ascii_lowercase()));
        }
    }
    Ok(refs)
}

/// The SHA of `wanted` (`main`, `refs/heads/main`, `v1`, `refs/tags/v1`):
/// a peeled tag (`^{}`) wins over the tag object.
pub fn find(refs: &[(String, String)], wanted: &str) -> Option<String> {
    let candidates = if wanted.starts_with("refs/") {
        vec![wanted.to_owned()]
    } else {
        vec![format!("refs/heads/{wanted}"), format!("refs/tags/{wanted}"), wanted.to_owned()]
    };
    candidates.iter().find_map(|name| {
        let peeled = format!("{name}^{{}}");
        refs.iter()
            .find(|(r, _)| *r == peeled)
            .or_else(|| refs.iter().find(|(r, _)| r == name))
            .map(|(_, sha)| sha.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(line: &str) -> String {
        format!("{:04x}{line}", line.len() + 4)
    }

    #[test]
    fn a_servers_advertisement_reads() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let c = "c".repeat(40);
        let body = format!(
            "{}0000{}{}{}{}0000",
            pkt("# service=git-upload-pack\n"),
            pkt(&format!("{a} HEAD\0multi_ack thin-pack side-band symref=HEAD:refs/heads/main\n")),
            pkt(&format!("{a} refs/heads/main\n")),
            pkt(&format!("{b} refs/tags/v1\n")),
            pkt(&format!("{c} refs/tags/v1^{{}}\n")),
        );
        let refs = advertised_refs(body.as_bytes()).unwrap();
        assert_eq!(refs.len(), 4);
        assert_eq!(find(&refs, "main"), Some(a.clone()));
        assert_eq!(find(&refs, "refs/heads/main"), Some(a));
        assert_eq!(find(&refs, "v1"), Some(c), "a peeled tag names the commit");
        assert_eq!(find(&refs, "nope"), None);
    }

    #[test]
    fn broken_advertisements_are_errors_not_panics() {
        for body in ["00", "zzzz", "0009ab", "0003"] {
            assert!(advertised_refs(body.as_bytes()).is_err(), "{body}");
        }
        assert_eq!(advertised_refs(b"").unwrap(), vec![]);
    }
}
