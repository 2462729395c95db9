//! Which download links form per NAT kind pair: the table in
//! `tests/natlab/links.txt`, which the NAT lab and the simulator both
//! check themselves against.

use std::fmt;

use crate::netsim::Nat;

/// The table as the repository states it.
pub const EXPECTED: &str = include_str!("../natlab/links.txt");

/// The kinds, in the table's order.
pub const KINDS: [Nat; 3] = [Nat::Open, Nat::Cone, Nat::Symmetric];

/// A kind's name in the table.
pub fn name(kind: Nat) -> &'static str {
    match kind {
        Nat::Open => "public",
        Nat::Cone => "cone",
        Nat::Symmetric => "symmetric",
    }
}

fn index(kind: Nat) -> usize {
    match kind {
        Nat::Open => 0,
        Nat::Cone => 1,
        Nat::Symmetric => 2,
    }
}

/// Per (downloader, uploader) kind: whether a link formed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkTable(pub [[bool; 3]; 3]);

impl LinkTable {
    /// Parses the table's text: `#` comments, then one row per downloader
    /// kind naming the kind and `yes`/`no` per uploader kind.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut table = [[None; 3]; 3];
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let row = KINDS
                .iter()
                .position(|&k| Some(&name(k)) == words.first())
                .ok_or_else(|| format!("{line:?}: a row starts with public, cone or symmetric"))?;
            if words.len() != 4 {
                return Err(format!("{line:?}: a kind and three yes/no cells"));
            }
            for (cell, word) in table[row].iter_mut().zip(&words[1..]) {
                *cell = Some(match *word {
                    "yes" => true,
                    "no" => false,
                    other => return Err(format!("{line:?}: {other:?} is neither yes nor no")),
                });
            }
        }
        let mut out = [[false; 3]; 3];
        for (r, row) in table.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                out[r][c] = cell.ok_or_else(|| format!("no row for {}", name(KINDS[r])))?;
            }
        }
        Ok(Self(out))
    }

    /// The repository's table.
    pub fn expected() -> Self {
        match Self::parse(EXPECTED) {
            Ok(t) => t,
            Err(e) => panic!("tests/natlab/links.txt: {e}"),
        }
    }

    /// Every cell: the downloader's kind name, the uploader's, and
    /// whether a link forms.
    pub fn cells(self) -> impl Iterator<Item = (&'static str, &'static str, bool)> {
        KINDS.iter().enumerate().flat_map(move |(r, &down)| {
            KINDS
                .iter()
                .enumerate()
                .map(move |(c, &up)| (name(down), name(up), self.0[r][c]))
        })
    }

    /// Records a link: `down` downloads from `up`.
    pub fn link(&mut self, down: Nat, up: Nat) {
        self.0[index(down)][index(up)] = true;
    }
}

impl fmt::Display for LinkTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "# {:<10} {:<8} {:<6} symmetric",
            "A \\ B", "public", "cone"
        )?;
        for (r, row) in self.0.iter().enumerate() {
            let cell = |b: bool| if b { "yes" } else { "no" };
            writeln!(
                f,
                "{:<12} {:<8} {:<6} {}",
                name(KINDS[r]),
                cell(row[0]),
                cell(row[1]),
                cell(row[2])
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_table_parses_and_prints_back() {
        let t = LinkTable::expected();
        assert_eq!(LinkTable::parse(&t.to_string()), Ok(t));
        assert!(t.0[0][0], "public peers link with each other");
        let cells: Vec<_> = t.cells().collect();
        assert_eq!(cells.len(), 9);
        assert!(cells.contains(&("cone", "public", true)), "{cells:?}");
    }

    #[test]
    fn a_bad_table_is_refused_naming_the_line() {
        let e = LinkTable::parse("public yes maybe no\n").expect_err("refused");
        assert!(e.contains("maybe"), "{e}");
        let e = LinkTable::parse("public yes yes yes\n").expect_err("refused");
        assert!(e.contains("no row for cone"), "{e}");
    }
}
