//! The file picker's matching (Ctrl-P in a workspace): a query matches a
//! path when its characters appear in it in order (case-insensitive, as
//! fuzzy finders do), and the best come first: matches in the file's own
//! name before its folders', runs of adjacent characters, then shorter
//! paths. Pure: a list of paths in, their order out.

/// The indices of `paths` that match `query`, best first (all paths, in
/// their order, for an empty query).
pub fn rank<'a>(query: &str, paths: impl IntoIterator<Item = &'a str>) -> Vec<usize> {
    let q: Vec<char> = query
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    if q.is_empty() {
        return (0..paths.into_iter().count()).collect();
    }
    let mut scored: Vec<(i64, usize, usize)> = paths
        .into_iter()
        .enumerate()
        .filter_map(|(i, p)| score(&q, p).map(|s| (s, p.len(), i)))
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    scored.into_iter().map(|(_, _, i)| i).collect()
}

/// How well `q` (lowercase) matches `path`: `None` when it does not. Each
/// matched char scores 1, plus 2 in the file name, plus 3 right after
/// the previous match, plus 2 at the start of a word.
fn score(q: &[char], path: &str) -> Option<i64> {
    if q.is_empty() {
        return Some(0);
    }
    let name_from = path.rfind('/').map_or(0, |i| i + 1);
    // Greedy from the end, so the match prefers the file name.
    let chars: Vec<(usize, char)> = path.char_indices().collect();
    let mut at = chars.len();
    let mut hits = Vec::with_capacity(q.len());
    for want in q.iter().rev() {
        loop {
            if at == 0 {
                return None;
            }
            at -= 1;
            let (byte, c) = chars[at];
            if c.to_lowercase().eq(std::iter::once(*want)) {
                hits.push((at, byte));
                break;
            }
        }
    }
    hits.reverse();
    let mut total = 0;
    let mut prev: Option<usize> = None;
    for &(i, byte) in &hits {
        total += 1;
        if byte >= name_from {
            total += 2;
        }
        if prev.is_some_and(|p| p + 1 == i) {
            total += 3;
        }
        let before = i.checked_sub(1).map(|j| chars[j].1);
        if before.is_none_or(|b| matches!(b, '/' | '_' | '-' | '.' | ' ')) {
            total += 2;
        }
        prev = Some(i);
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::rank;

    #[test]
    fn in_order_case_insensitive_and_the_file_name_first() {
        let paths = ["src/lib.rs", "README.md", "main.rs", "lib/other.rs"];
        assert_eq!(rank("", paths), [0, 1, 2, 3]);
        assert_eq!(rank("lib", paths), [0, 3]);
        assert_eq!(rank("rdm", paths), [1]);
        assert_eq!(rank("MAIN", paths), [2]);
        assert_eq!(rank("xyz", paths), Vec::<usize>::new());
        // Adjacent letters in the name beat letters spread over the path.
        assert_eq!(rank("rs", ["r/x/s.txt", "a.rs"]), [1, 0]);
    }
}
