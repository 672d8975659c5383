//! A small lexer of Rust source, enough to find the paths a file imports: identifiers, `::`,
//! punctuation and numbers, with their lines; comments, strings, characters and lifetimes
//! skipped.

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
    /// A number.
    Literal,
}

/// The tokens of a Rust file and their lines, without comments, strings, characters and
/// lifetimes.
pub fn lex(src: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = src.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let is_ident_start = |c: char| c == '_' || c.is_alphabetic();
    let is_ident_char = |c: char| c == '_' || c.is_alphanumeric();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Skips a string whose opening `"` is at `i`, with escapes unless `raw`, then `hashes` `#`.
    let skip_string = |mut i: usize, raw: bool, hashes: usize, line: &mut usize| -> usize {
        i += 1;
        while i < chars.len() {
            match chars[i] {
                '\\' if !raw => {
                    if at(i + 1) == '\n' {
                        *line += 1;
                    }
                    i += 2;
                    continue;
                }
                '\n' => *line += 1,
                '"' if (1..=hashes).all(|h| at(i + h) == '#') => return i + 1 + hashes,
                _ => {}
            }
            i += 1;
        }
        i
    };
    // Skips a character literal whose opening `'` is at `i`.
    let skip_char = |mut i: usize| -> usize {
        i += 1;
        if at(i) == '\\' {
            i += 2;
        }
        while i < chars.len() && chars[i] != '\'' {
            i += 1;
        }
        i + 1
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            _ if c.is_whitespace() => i += 1,
            '/' if at(i + 1) == '/' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(i + 1) == '*' => {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && at(i + 1) == '*' {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && at(i + 1) == '/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        if chars[i] == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                }
            }
            '"' => i = skip_string(i, false, 0, &mut line),
            '\'' if at(i + 1) == '\\' || at(i + 2) == '\'' => i = skip_char(i),
            // A lifetime or a label.
            '\'' => {
                i += 1;
                while is_ident_char(at(i)) {
                    i += 1;
                }
            }
            _ if c.is_ascii_digit() => {
                while is_ident_char(at(i)) {
                    i += 1;
                }
                tokens.push((Tok::Literal, line));
            }
            _ if is_ident_start(c) => {
                let start = i;
                while is_ident_char(at(i)) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let raw_prefix = matches!(word.as_str(), "r" | "br" | "cr");
                if raw_prefix && (at(i) == '"' || at(i) == '#') {
                    let mut hashes = 0;
                    while at(i + hashes) == '#' {
                        hashes += 1;
                    }
                    if at(i + hashes) == '"' {
                        i = skip_string(i + hashes, true, hashes, &mut line);
                        continue;
                    }
                    if word == "r" && hashes == 1 && is_ident_start(at(i + 1)) {
                        // A raw identifier: `r#type`.
                        let start = i + 1;
                        i = start;
                        while is_ident_char(at(i)) {
                            i += 1;
                        }
                        tokens.push((Tok::Ident(chars[start..i].iter().collect()), line));
                        continue;
                    }
                }
                if matches!(word.as_str(), "b" | "c") && at(i) == '"' {
                    i = skip_string(i, false, 0, &mut line);
                } else if word == "b" && at(i) == '\'' {
                    i = skip_char(i);
                } else {
                    tokens.push((Tok::Ident(word), line));
                }
            }
            ':' if at(i + 1) == ':' => {
                tokens.push((Tok::PathSep, line));
                i += 2;
            }
            _ => {
                tokens.push((Tok::Punct(c), line));
                i += 1;
            }
        }
    }
    tokens
}
