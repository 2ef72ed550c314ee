//! Ref names as git checks them (refs.c `check_refname_format`, `refname_is_safe`): a ref whose
//! name fails the check is listed with the null id, and one that is not even safe (it could
//! name a file outside `refs/`) ends the session.

/// What git's `refname_disposition` table says of a byte: 0 ordinary, 1 end of component,
/// 2 `.`, 3 `{`, 4 never allowed, 5 `*` (only in refspec patterns, never here). Bytes from
/// 128 up are ordinary.
fn disposition(b: u8) -> u8 {
    match b {
        b'/' => 1,
        b'.' => 2,
        b'{' => 3,
        b'*' => 5,
        // NUL ends a C string: a name with one inside is not one git could have written.
        0..=0x1f | 0x7f | b' ' | b':' | b'?' | b'[' | b'\\' | b'^' | b'~' => 4,
        _ => 0,
    }
}

/// git's `check_refname_component`: the length of the component at the start of `name`, or
/// `None` if it is not allowed (it starts with `.`, contains `..`, `@{` or a forbidden byte,
/// or ends with `.lock`).
fn component(name: &[u8]) -> Option<usize> {
    let mut last = 0u8;
    let mut len = name.len();
    for (i, &b) in name.iter().enumerate() {
        match disposition(b) {
            1 => {
                len = i;
                break;
            }
            2 if last == b'.' => return None,
            3 if last == b'@' => return None,
            4 | 5 => return None,
            _ => {}
        }
        last = b;
    }
    let c = &name[..len];
    if c.first() == Some(&b'.') || c.ends_with(b".lock") {
        return None;
    }
    Some(len)
}

/// git's `check_refname_format(name, onelevel ? REFNAME_ALLOW_ONELEVEL : 0) == 0`.
pub fn is_valid(name: &[u8], onelevel: bool) -> bool {
    if name == b"@" {
        return false;
    }
    let mut rest = name;
    let mut components = 0;
    loop {
        match component(rest) {
            Some(0) | None => return false,
            Some(len) => {
                components += 1;
                if len == rest.len() {
                    if rest[len - 1] == b'.' {
                        return false;
                    }
                    break;
                }
                rest = &rest[len + 1..];
            }
        }
    }
    onelevel || components >= 2
}

/// git's `refname_is_safe`: under `refs/`, no empty, `.` or `..` component (nothing that
/// could lead out of `refs/`); elsewhere only `A`–`Z` and `_` (a root ref such as `HEAD`).
pub fn is_safe(name: &[u8]) -> bool {
    match name.strip_prefix(b"refs/") {
        Some(rest) => {
            !rest.is_empty() && rest.split(|&b| b == b'/').all(|c| !c.is_empty() && c != b"." && c != b"..")
        }
        None => !name.is_empty() && name.iter().all(|&b| b.is_ascii_uppercase() || b == b'_'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_as_git_checks_them() {
        for ok in
            ["refs/heads/main", "refs/heads/a.b", "refs/tags/v1.0", "HEAD", "refs/heads/ü", "refs/heads/a@b"]
        {
            assert!(is_valid(ok.as_bytes(), true), "{ok}");
        }
        for bad in [
            "",
            "@",
            "refs/heads/",
            "refs//x",
            "/refs/x",
            "refs/heads/a..b",
            "refs/heads/.x",
            "refs/heads/x.",
            "refs/heads/x.lock",
            "refs/heads/a b",
            "refs/heads/a~1",
            "refs/heads/a^",
            "refs/heads/a:b",
            "refs/heads/a?",
            "refs/heads/a[",
            "refs/heads/a\\b",
            "refs/heads/a*",
            "refs/heads/a@{1}",
            "refs/heads/x\r",
            "refs/heads/\x7f",
            "refs/heads/a\0b",
        ] {
            assert!(!is_valid(bad.as_bytes(), true), "{bad:?}");
        }
        assert!(is_valid(b"HEAD", true));
        assert!(!is_valid(b"HEAD", false));
        assert!(is_valid(b"refs/x", false));
    }

    #[test]
    fn safe_names_as_git_checks_them() {
        for ok in ["refs/heads/main", "refs/heads/a..b", "refs/x/.y", "HEAD", "FETCH_HEAD"] {
            assert!(is_safe(ok.as_bytes()), "{ok}");
        }
        for bad in
            ["refs/", "refs//x", "refs/x/", "refs/../x", "refs/x/../y", "refs/./x", "head", "", "a/b", "H-1"]
        {
            assert!(!is_safe(bad.as_bytes()), "{bad:?}");
        }
    }
}
