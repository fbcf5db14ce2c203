//! The `rules:if` / `only:variables` expression language.
//!
//! Mirrors `Gitlab::Ci::Pipeline::Expression`: variables (`$VAR`), strings
//! (`"…"` or `'…'`, no escapes), `null`, regex patterns (`/…/flags`), the
//! operators `==`, `!=`, `=~`, `!~`, `&&` (binds tighter) and `||`, and
//! parentheses. Evaluation follows GitLab's Ruby semantics: an undefined
//! variable is `null`, `&&`/`||` return one of their operands, and the
//! statement is true when its value is "present" (not null, not false, not
//! an empty string). The right side of `=~` may be a variable holding a
//! `/pattern/`. Regexes use the `regex` crate, close to GitLab's RE2.
//!
//! Parsing happens once, at validation time, so syntax errors and invalid
//! regexes are reported with the file; evaluation cannot fail.

use std::collections::HashMap;
use std::fmt;

use regex::Regex;

/// Largest accepted regex program, to keep hostile patterns cheap.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Deepest parenthesis nesting accepted.
const MAX_NESTING: usize = 64;

/// A parsed expression together with its source text.
#[derive(Clone, Debug)]
pub struct Condition {
    source: String,
    expr: Expr,
}

impl Condition {
    /// Parses an expression. The error is a lowercase message that says
    /// what is wrong and how an expression should look.
    pub fn parse(source: &str) -> Result<Condition, String> {
        let tokens = lex(source)?;
        let mut parser = ExprParser {
            tokens,
            pos: 0,
            depth: 0,
        };
        let expr = parser.or()?;
        if parser.pos != parser.tokens.len() {
            return Err(format!(
                "unexpected {} in expression",
                parser.tokens[parser.pos].describe()
            ));
        }
        Ok(Condition {
            source: source.to_owned(),
            expr,
        })
    }

    /// The text the condition was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the condition against variable values; a variable absent
    /// from `vars` is `null`.
    pub fn evaluate(&self, vars: &HashMap<String, String>) -> bool {
        self.expr.eval(vars).present()
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[derive(Clone, Debug)]
enum Token {
    Var(String),
    Str(String),
    Pattern(Box<Regex>),
    Null,
    Eq,
    Ne,
    Match,
    NoMatch,
    And,
    Or,
    Open,
    Close,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Var(v) => format!("`${v}`"),
            Token::Str(s) => format!("string {s:?}"),
            Token::Pattern(r) => format!("pattern `/{}/`", r.as_str()),
            Token::Null => "`null`".into(),
            Token::Eq => "`==`".into(),
            Token::Ne => "`!=`".into(),
            Token::Match => "`=~`".into(),
            Token::NoMatch => "`!~`".into(),
            Token::And => "`&&`".into(),
            Token::Or => "`||`".into(),
            Token::Open => "`(`".into(),
            Token::Close => "`)`".into(),
        }
    }
}

fn lex(source: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            c if c.is_whitespace() => i += 1,
            '$' => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && (chars[end].is_alphanumeric() || chars[end] == '_') {
                    end += 1;
                }
                if end == start {
                    return Err(format!(
                        "`$` at offset {i} is not followed by a variable name; write `$NAME` \
                         (braces like `${{NAME}}` are not allowed in expressions)"
                    ));
                }
                tokens.push(Token::Var(chars[start..end].iter().collect()));
                i = end;
            }
            '"' | '\'' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&q| q == c)
                    .ok_or_else(|| format!("string starting at offset {i} is not closed"))?;
                tokens.push(Token::Str(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            '/' => {
                let (regex, next) = lex_pattern(&chars, i)?;
                tokens.push(Token::Pattern(Box::new(regex)));
                i = next;
            }
            '=' if next == Some('=') => {
                tokens.push(Token::Eq);
                i += 2;
            }
            '!' if next == Some('=') => {
                tokens.push(Token::Ne);
                i += 2;
            }
            '=' if next == Some('~') => {
                tokens.push(Token::Match);
                i += 2;
            }
            '!' if next == Some('~') => {
                tokens.push(Token::NoMatch);
                i += 2;
            }
            '&' if next == Some('&') => {
                tokens.push(Token::And);
                i += 2;
            }
            '|' if next == Some('|') => {
                tokens.push(Token::Or);
                i += 2;
            }
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            'n' if chars[i..].starts_with(&['n', 'u', 'l', 'l'])
                && !chars
                    .get(i + 4)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_') =>
            {
                tokens.push(Token::Null);
                i += 4;
            }
            _ => {
                return Err(format!(
                    "unexpected `{c}` at offset {i}; expressions are made of `$VARIABLES`, \
                     \"strings\", /regexes/, null, ==, !=, =~, !~, &&, || and parentheses"
                ))
            }
        }
    }
    if tokens.is_empty() {
        return Err("the expression is empty".into());
    }
    Ok(tokens)
}

/// Lexes `/regex/flags` starting at `start` (the opening slash).
fn lex_pattern(chars: &[char], start: usize) -> Result<(Regex, usize), String> {
    let mut i = start + 1;
    let mut body = String::new();
    loop {
        match chars.get(i) {
            None => {
                return Err(format!(
                    "regex starting at offset {start} has no closing `/`; escape slashes inside it as `\\/`"
                ))
            }
            Some('\\') if chars.get(i + 1) == Some(&'/') => {
                body.push('/');
                i += 2;
            }
            Some('\\') => {
                body.push('\\');
                if let Some(&c) = chars.get(i + 1) {
                    body.push(c);
                }
                i += 2;
            }
            Some('/') => {
                i += 1;
                break;
            }
            Some(&c) => {
                body.push(c);
                i += 1;
            }
        }
    }
    let mut flags = String::new();
    while let Some(&c) = chars.get(i) {
        match c {
            'i' | 'm' | 's' | 'U' => {
                // Ruby's `m` (dot matches newline) is `s` in RE2 and here.
                let c = if c == 'm' { 's' } else { c };
                if !flags.contains(c) {
                    flags.push(c);
                }
                i += 1;
            }
            c if c.is_alphanumeric() => {
                return Err(format!(
                    "unknown regex flag `{c}`; GitLab supports `i`, `m`, `s` and `U`"
                ))
            }
            _ => break,
        }
    }
    if body.is_empty() {
        return Err(format!("empty regex at offset {start}"));
    }
    let regex = compile_regex(&body, &flags)?;
    Ok((regex, i))
}

fn compile_regex(body: &str, flags: &str) -> Result<Regex, String> {
    let full = if flags.is_empty() {
        body.to_owned()
    } else {
        format!("(?{flags}){body}")
    };
    regex::RegexBuilder::new(&full)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let detail = e.to_string();
            let last = detail.lines().last().unwrap_or("").trim().to_owned();
            format!("invalid regex `/{body}/`: {}", last.to_lowercase())
        })
}

/// Turns a variable value such as `/^v\d+/i` into a regex (the right side
/// of `=~` may be a variable since GitLab 15.0).
fn regex_from_value(value: &str) -> Option<Regex> {
    let chars: Vec<char> = value.chars().collect();
    if chars.first() != Some(&'/') {
        return None;
    }
    let (regex, end) = lex_pattern(&chars, 0).ok()?;
    (end == chars.len()).then_some(regex)
}

#[derive(Clone, Debug)]
enum Expr {
    Value(Token),
    Compare(Box<Expr>, Token, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

struct ExprParser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl ExprParser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while matches!(self.peek(), Some(Token::Or)) {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.comparison()?;
        while matches!(self.peek(), Some(Token::And)) {
            self.pos += 1;
            let right = self.comparison()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let left = self.primary()?;
        match self.peek() {
            Some(op @ (Token::Eq | Token::Ne | Token::Match | Token::NoMatch)) => {
                let op = op.clone();
                self.pos += 1;
                let right = self.primary()?;
                if matches!(op, Token::Match | Token::NoMatch)
                    && !matches!(right, Expr::Value(Token::Pattern(_) | Token::Var(_)))
                {
                    return Err(format!(
                        "the right side of {} must be a /regex/ or a variable holding one",
                        op.describe()
                    ));
                }
                Ok(Expr::Compare(Box::new(left), op, Box::new(right)))
            }
            _ => Ok(left),
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let Some(token) = self.peek().cloned() else {
            return Err("the expression ends where a value was expected".into());
        };
        self.pos += 1;
        match token {
            Token::Open => {
                self.depth += 1;
                if self.depth > MAX_NESTING {
                    return Err("parentheses are nested too deeply".into());
                }
                let inner = self.or()?;
                self.depth -= 1;
                match self.peek() {
                    Some(Token::Close) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    _ => Err("a `(` is not closed; add the missing `)`".into()),
                }
            }
            Token::Var(_) | Token::Str(_) | Token::Pattern(_) | Token::Null => {
                Ok(Expr::Value(token))
            }
            other => Err(format!(
                "unexpected {} where a value was expected",
                other.describe()
            )),
        }
    }
}

/// A runtime value with Ruby's truthiness.
#[derive(Clone, Debug, PartialEq)]
enum Val {
    Null,
    Bool(bool),
    Str(String),
}

impl Val {
    /// Ruby truthiness: only `nil` and `false` are false.
    fn truthy(&self) -> bool {
        !matches!(self, Val::Null | Val::Bool(false))
    }

    /// Rails' `present?`: also false for an empty string.
    fn present(&self) -> bool {
        match self {
            Val::Null | Val::Bool(false) => false,
            Val::Bool(true) => true,
            Val::Str(s) => !s.trim().is_empty(),
        }
    }
}

impl Expr {
    fn eval(&self, vars: &HashMap<String, String>) -> Val {
        match self {
            Expr::Value(Token::Var(name)) => {
                vars.get(name).map_or(Val::Null, |v| Val::Str(v.clone()))
            }
            Expr::Value(Token::Str(s)) => Val::Str(s.clone()),
            Expr::Value(Token::Pattern(r)) => Val::Str(format!("/{}/", r.as_str())),
            Expr::Value(_) => Val::Null,
            Expr::And(l, r) => {
                let left = l.eval(vars);
                if left.truthy() {
                    r.eval(vars)
                } else {
                    left
                }
            }
            Expr::Or(l, r) => {
                let left = l.eval(vars);
                if left.truthy() {
                    left
                } else {
                    r.eval(vars)
                }
            }
            Expr::Compare(l, op, r) => {
                let left = l.eval(vars);
                match op {
                    Token::Eq => Val::Bool(left == r.eval(vars)),
                    Token::Ne => Val::Bool(left != r.eval(vars)),
                    Token::Match | Token::NoMatch => {
                        let matched = match (&left, r.as_regex(vars)) {
                            (Val::Str(text), Some(regex)) => regex.is_match(text),
                            _ => false,
                        };
                        Val::Bool(matched == matches!(op, Token::Match))
                    }
                    _ => Val::Null,
                }
            }
        }
    }

    fn as_regex(&self, vars: &HashMap<String, String>) -> Option<Regex> {
        match self {
            Expr::Value(Token::Pattern(r)) => Some((**r).clone()),
            Expr::Value(Token::Var(name)) => vars.get(name).and_then(|v| regex_from_value(v)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(source: &str, vars: &[(&str, &str)]) -> bool {
        let vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Condition::parse(source).unwrap().evaluate(&vars)
    }

    #[test]
    fn equality_and_presence() {
        let vars = [("CI_COMMIT_BRANCH", "main"), ("EMPTY", "")];
        assert!(eval("$CI_COMMIT_BRANCH == \"main\"", &vars));
        assert!(eval("$CI_COMMIT_BRANCH == 'main'", &vars));
        assert!(!eval("$CI_COMMIT_BRANCH != \"main\"", &vars));
        assert!(eval("$CI_COMMIT_BRANCH", &vars));
        assert!(!eval("$EMPTY", &vars));
        assert!(!eval("$UNDEFINED", &vars));
        assert!(eval("$UNDEFINED == null", &vars));
        assert!(!eval("$EMPTY == null", &vars));
        assert!(eval("$CI_COMMIT_BRANCH != null", &vars));
        assert!(eval("\"main\" == $CI_COMMIT_BRANCH", &vars));
    }

    #[test]
    fn regex_matching() {
        let vars = [("REF", "release/1.2"), ("PAT", "/^RELEASE/i")];
        assert!(eval("$REF =~ /^release\\/\\d+/", &vars));
        assert!(eval("$REF =~ /^release/", &vars));
        assert!(!eval("$REF !~ /^release/", &vars));
        assert!(eval("$REF =~ /^RELEASE/i", &vars));
        assert!(eval("$REF =~ $PAT", &vars));
        assert!(!eval("$UNDEFINED =~ /.*/", &vars));
        assert!(eval("$UNDEFINED !~ /.*/", &vars));
    }

    #[test]
    fn precedence_and_parentheses() {
        let vars = [("A", "1"), ("B", "")];
        assert!(eval("$A || $B && $C", &vars));
        assert!(!eval("($A || $B) && $C", &vars));
        assert!(eval("$A == \"1\" && ($C || $A)", &vars));
        // Ruby semantics: "" is truthy for `||`, so `$B || $A` yields "".
        assert!(!eval("$B || $A", &vars));
    }

    #[test]
    fn syntax_errors_are_explained() {
        for bad in [
            "",
            "$",
            "${A} == 'x'",
            "$A = 'x'",
            "$A == 'x",
            "($A",
            "$A ==",
            "$A =~ 'x'",
            "$A =~ /(unclosed/",
            "$A =~ /x/q",
            "$A $B",
            "&& $A",
        ] {
            let err = Condition::parse(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
            assert!(
                err.starts_with(|c: char| c.is_lowercase() || c == '`'),
                "{bad}: {err}"
            );
        }
    }
}
