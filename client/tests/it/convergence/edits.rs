//! The random edits of a schedule, and the markers that prove every acked
//! edit is in the room exactly once.
//!
//! Now and then an author inserts a marker, `⟨u2.7⟩`, made of characters
//! no other edit produces. Nobody deletes or splits a marker (deletes and
//! inserts avoid them), so the only way one leaves the text is its author's
//! undo. The author keeps a copy of its undo stack to know which markers
//! must be in the final text: each exactly once, whatever the rate limit
//! dropped and the client resent, whatever the restarts made members bring
//! back.

use collab_client::Client;
use rand::RngExt;
use rand::rngs::StdRng;

const PIECES: &[&str] = &[
    "a",
    "b",
    "xyz",
    "é",
    "ß",
    "日本",
    "😀",
    "👩‍👩‍👧",
    "\r\n",
    "\n",
    " ",
    "\t",
    "🇫🇷",
    "e\u{301}",
];

const OPEN: char = '⟨';
const CLOSE: char = '⟩';

pub fn random_text(rng: &mut StdRng) -> String {
    if rng.random_ratio(1, 40) {
        // A paste: over the server's (small, see run_many) frame limit now
        // and then, so it goes out in parts.
        let n = rng.random_range(50..=400);
        return (0..n)
            .map(|_| PIECES[rng.random_range(0..PIECES.len())])
            .collect();
    }
    let n = rng.random_range(1..=3);
    (0..n)
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect()
}

/// Which characters belong to a marker: `(any, inner)`, `inner` being every
/// marker character but the opening one (inserting before it splits it).
fn marked(text: &str) -> (Vec<bool>, Vec<bool>) {
    let mut any = Vec::new();
    let mut inner = Vec::new();
    let mut inside = false;
    for c in text.chars() {
        let opens = c == OPEN;
        any.push(inside || opens);
        inner.push(inside);
        if opens {
            inside = true;
        } else if c == CLOSE {
            inside = false;
        }
    }
    (any, inner)
}

/// One member's random edits, with the markers it made.
#[derive(Debug)]
pub struct Author {
    name: String,
    /// My undo stack as I made it: the marker each step inserted.
    steps: Vec<Option<String>>,
    markers: Vec<String>,
}

impl Author {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            steps: Vec::new(),
            markers: Vec::new(),
        }
    }

    /// One random local edit, chosen and applied under the client's lock
    /// so the positions are valid for the text as it is.
    pub fn edit(&mut self, c: &Client, rng: &mut StdRng) {
        let step = c.with_replica(|r| {
            let text = r.text();
            let (any, inner) = marked(&text);
            let len = any.len();
            let free_at = |pos: usize| pos == len || !inner[pos];
            let free = |pos: usize, del: usize| !any[pos..pos + del].iter().any(|m| *m);
            let choice = rng.random_range(0..12);
            let (step, msg) = if choice == 11 {
                let could = r.can_undo();
                let msg = r.undo();
                if could {
                    self.steps.pop();
                }
                (None, msg)
            } else if choice == 10 {
                let marker = format!("{OPEN}{}.{}{CLOSE}", self.name, self.markers.len());
                let mut pos = rng.random_range(0..=len);
                if !free_at(pos) {
                    pos = len;
                }
                self.markers.push(marker.clone());
                (Some(Some(marker.clone())), r.edit(pos, 0, &marker).unwrap())
            } else {
                let pos = rng.random_range(0..=len);
                let del = if choice < 5 || pos == len {
                    0
                } else {
                    rng.random_range(1..=(len - pos).min(6))
                };
                let insert = if del == 0 || choice >= 8 {
                    random_text(rng)
                } else {
                    String::new()
                };
                if free_at(pos) && free(pos, del) {
                    (Some(None), r.edit(pos, del, &insert).unwrap())
                } else {
                    (Some(None), r.edit(len, 0, &random_text(rng)).unwrap())
                }
            };
            (step, msg.into_iter().collect())
        });
        if let Some(step) = step {
            self.steps.push(step);
        }
    }

    /// Checks the final text: each of my markers I did not undo is there
    /// exactly once, and the undone ones are gone.
    pub fn check(&self, text: &str) -> Result<(), String> {
        for m in &self.markers {
            let want = usize::from(self.steps.contains(&Some(m.clone())));
            let got = text.matches(m.as_str()).count();
            if got != want {
                return Err(format!(
                    "{}'s marker {m} is in the text {got} times, expected {want}",
                    self.name
                ));
            }
        }
        Ok(())
    }
}
