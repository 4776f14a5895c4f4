//! Event parser: a port of go-yaml v3's `parserc.go` (LL(1) state machine
//! over scanner tokens), including how it hands comments to events.

use super::scanner::{Mark, ScalarStyle, Scanner, SyntaxError, TokType, Token};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvType {
    StreamStart,
    StreamEnd,
    DocumentStart,
    DocumentEnd,
    Alias,
    Scalar,
    SequenceStart,
    SequenceEnd,
    MappingStart,
    MappingEnd,
}

#[derive(Debug)]
pub struct Event {
    pub typ: EvType,
    pub start: Mark,
    pub anchor: Vec<u8>,
    pub tag: Vec<u8>,
    pub value: Vec<u8>,
    pub style: ScalarStyle,
    /// Flow style for collections.
    pub flow: bool,
    pub head_comment: Vec<u8>,
    pub line_comment: Vec<u8>,
    pub foot_comment: Vec<u8>,
}

impl Event {
    fn new(typ: EvType, start: Mark) -> Event {
        Event {
            typ,
            start,
            anchor: Vec::new(),
            tag: Vec::new(),
            value: Vec::new(),
            style: ScalarStyle::Plain,
            flow: false,
            head_comment: Vec::new(),
            line_comment: Vec::new(),
            foot_comment: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    StreamStart,
    ImplicitDocumentStart,
    DocumentStart,
    DocumentContent,
    DocumentEnd,
    BlockNode,
    BlockSequenceFirstEntry,
    BlockSequenceEntry,
    IndentlessSequenceEntry,
    BlockMappingFirstKey,
    BlockMappingKey,
    BlockMappingValue,
    FlowSequenceFirstEntry,
    FlowSequenceEntry,
    FlowSequenceEntryMappingKey,
    FlowSequenceEntryMappingValue,
    FlowSequenceEntryMappingEnd,
    FlowMappingFirstKey,
    FlowMappingKey,
    FlowMappingValue,
    FlowMappingEmptyValue,
    End,
}

pub struct Parser<'a> {
    pub scanner: Scanner<'a>,
    state: State,
    states: Vec<State>,
    marks: Vec<Mark>,
    tag_directives: Vec<(Vec<u8>, Vec<u8>)>,
    head_comment: Vec<u8>,
    line_comment: Vec<u8>,
    foot_comment: Vec<u8>,
    stem_comment: Vec<u8>,
    pub error: Option<SyntaxError>,
}

type PR = Result<Event, ()>;

impl<'a> Parser<'a> {
    pub fn new(input: &'a [u8]) -> Parser<'a> {
        Parser {
            scanner: Scanner::new(input),
            state: State::StreamStart,
            states: Vec::new(),
            marks: Vec::new(),
            tag_directives: Vec::new(),
            head_comment: Vec::new(),
            line_comment: Vec::new(),
            foot_comment: Vec::new(),
            stem_comment: Vec::new(),
            error: None,
        }
    }

    /// The error of whichever stage failed.
    pub fn take_error(&mut self) -> Option<SyntaxError> {
        self.error.take().or_else(|| self.scanner.error.take())
    }

    /// Peek the head token (type and start mark), unfolding comments.
    fn peek(&mut self) -> Result<(TokType, Mark), ()> {
        if !self.scanner.token_available {
            self.scanner.fetch_more_tokens()?;
        }
        let (typ, start) = match self.scanner.tokens.front() {
            Some(t) => (t.typ, t.start),
            None => return Err(()),
        };
        self.unfold_comments(typ, start);
        Ok((typ, start))
    }

    fn unfold_comments(&mut self, typ: TokType, start: Mark) {
        let sc = &mut self.scanner;
        while sc.comments_head < sc.comments.len() && start.index >= sc.comments[sc.comments_head].token_mark.index {
            let comment = &mut sc.comments[sc.comments_head];
            if !comment.head.is_empty() {
                if typ == TokType::BlockEnd {
                    // No heads on ends; keep it for a follow-up token.
                    break;
                }
                if !self.head_comment.is_empty() {
                    self.head_comment.push(b'\n');
                }
                self.head_comment.extend_from_slice(&comment.head);
            }
            if !comment.foot.is_empty() {
                if !self.foot_comment.is_empty() {
                    self.foot_comment.push(b'\n');
                }
                self.foot_comment.extend_from_slice(&comment.foot);
            }
            if !comment.line.is_empty() {
                if !self.line_comment.is_empty() {
                    self.line_comment.push(b'\n');
                }
                self.line_comment.extend_from_slice(&comment.line);
            }
            *comment = Default::default();
            sc.comments_head += 1;
        }
        // Drop consumed comments now and then so the list stays small.
        if sc.comments_head > 64 && sc.comments_head * 2 > sc.comments.len() {
            sc.comments.drain(..sc.comments_head);
            sc.comments_head = 0;
        }
    }

    fn skip_token(&mut self) -> Token {
        match self.scanner.pop_token() {
            Some(t) => t,
            None => Token {
                typ: TokType::None,
                start: Mark::default(),
                end: Mark::default(),
                value: Vec::new(),
                suffix: Vec::new(),
                style: ScalarStyle::Plain,
                major: 0,
                minor: 0,
            },
        }
    }

    fn set_error(&mut self, problem: &str, problem_mark: Mark) -> PR {
        self.error = Some(SyntaxError {
            scanner: false,
            context_mark: Mark::default(),
            problem: problem.to_string(),
            problem_mark,
        });
        Err(())
    }

    fn set_error_context(&mut self, context_mark: Mark, problem: &str, problem_mark: Mark) -> PR {
        self.error = Some(SyntaxError {
            scanner: false,
            context_mark,
            problem: problem.to_string(),
            problem_mark,
        });
        Err(())
    }

    fn set_event_comments(&mut self, ev: &mut Event) {
        ev.head_comment = std::mem::take(&mut self.head_comment);
        ev.line_comment = std::mem::take(&mut self.line_comment);
        ev.foot_comment = std::mem::take(&mut self.foot_comment);
        self.stem_comment.clear();
    }

    fn pop_state(&mut self) {
        self.state = self.states.pop().unwrap_or(State::End);
    }

    /// Next event; `Ok(None)` after the stream ended.
    pub fn parse(&mut self) -> Result<Option<Event>, ()> {
        if self.scanner.stream_end_produced
            || self.error.is_some()
            || self.scanner.error.is_some()
            || self.state == State::End
        {
            return Ok(None);
        }
        self.state_machine().map(Some)
    }

    fn state_machine(&mut self) -> PR {
        match self.state {
            State::StreamStart => self.parse_stream_start(),
            State::ImplicitDocumentStart => self.parse_document_start(true),
            State::DocumentStart => self.parse_document_start(false),
            State::DocumentContent => self.parse_document_content(),
            State::DocumentEnd => self.parse_document_end(),
            State::BlockNode => self.parse_node(true, false),
            State::BlockSequenceFirstEntry => self.parse_block_sequence_entry(true),
            State::BlockSequenceEntry => self.parse_block_sequence_entry(false),
            State::IndentlessSequenceEntry => self.parse_indentless_sequence_entry(),
            State::BlockMappingFirstKey => self.parse_block_mapping_key(true),
            State::BlockMappingKey => self.parse_block_mapping_key(false),
            State::BlockMappingValue => self.parse_block_mapping_value(),
            State::FlowSequenceFirstEntry => self.parse_flow_sequence_entry(true),
            State::FlowSequenceEntry => self.parse_flow_sequence_entry(false),
            State::FlowSequenceEntryMappingKey => self.parse_flow_sequence_entry_mapping_key(),
            State::FlowSequenceEntryMappingValue => self.parse_flow_sequence_entry_mapping_value(),
            State::FlowSequenceEntryMappingEnd => self.parse_flow_sequence_entry_mapping_end(),
            State::FlowMappingFirstKey => self.parse_flow_mapping_key(true),
            State::FlowMappingKey => self.parse_flow_mapping_key(false),
            State::FlowMappingValue => self.parse_flow_mapping_value(false),
            State::FlowMappingEmptyValue => self.parse_flow_mapping_value(true),
            State::End => Err(()),
        }
    }

    fn parse_stream_start(&mut self) -> PR {
        let (typ, start) = self.peek()?;
        if typ != TokType::StreamStart {
            return self.set_error("did not find expected <stream-start>", start);
        }
        self.state = State::ImplicitDocumentStart;
        self.skip_token();
        Ok(Event::new(EvType::StreamStart, start))
    }

    fn parse_document_start(&mut self, implicit: bool) -> PR {
        let (mut typ, mut start) = self.peek()?;
        if !implicit {
            while typ == TokType::DocumentEnd {
                self.skip_token();
                (typ, start) = self.peek()?;
            }
        }
        if implicit
            && typ != TokType::VersionDirective
            && typ != TokType::TagDirective
            && typ != TokType::DocumentStart
            && typ != TokType::StreamEnd
        {
            self.process_directives()?;
            self.states.push(State::DocumentEnd);
            self.state = State::BlockNode;
            let mut head_comment = Vec::new();
            if !self.head_comment.is_empty() {
                // Split the header at the last empty line: the part before it
                // goes to the document, the rest to the first node.
                let hc = &self.head_comment;
                let mut split = None;
                let mut i = hc.len() - 1;
                while i > 0 {
                    if hc[i] == b'\n' {
                        if i == hc.len() - 1 {
                            split = Some((i, i + 1));
                            break;
                        } else if hc[i - 1] == b'\n' {
                            split = Some((i - 1, i + 1));
                            break;
                        }
                    }
                    i -= 1;
                }
                if let Some((a, b)) = split {
                    head_comment = self.head_comment[..a].to_vec();
                    self.head_comment = self.head_comment[b..].to_vec();
                }
            }
            let mut ev = Event::new(EvType::DocumentStart, start);
            ev.head_comment = head_comment;
            Ok(ev)
        } else if typ != TokType::StreamEnd {
            let start_mark = start;
            self.process_directives()?;
            let (typ, start) = self.peek()?;
            if typ != TokType::DocumentStart {
                return self.set_error("did not find expected <document start>", start);
            }
            self.states.push(State::DocumentEnd);
            self.state = State::DocumentContent;
            self.skip_token();
            Ok(Event::new(EvType::DocumentStart, start_mark))
        } else {
            self.state = State::End;
            self.skip_token();
            Ok(Event::new(EvType::StreamEnd, start))
        }
    }

    fn parse_document_content(&mut self) -> PR {
        let (typ, start) = self.peek()?;
        if matches!(
            typ,
            TokType::VersionDirective
                | TokType::TagDirective
                | TokType::DocumentStart
                | TokType::DocumentEnd
                | TokType::StreamEnd
        ) {
            self.pop_state();
            return Ok(self.empty_scalar(start));
        }
        self.parse_node(true, false)
    }

    fn parse_document_end(&mut self) -> PR {
        let (typ, start) = self.peek()?;
        if typ == TokType::DocumentEnd {
            self.skip_token();
        }
        self.tag_directives.clear();
        self.state = State::DocumentStart;
        let mut ev = Event::new(EvType::DocumentEnd, start);
        self.set_event_comments(&mut ev);
        if !ev.head_comment.is_empty() && ev.foot_comment.is_empty() {
            ev.foot_comment = std::mem::take(&mut ev.head_comment);
        }
        Ok(ev)
    }

    fn parse_node(&mut self, block: bool, indentless_sequence: bool) -> PR {
        let (mut typ, mut tstart) = self.peek()?;
        if typ == TokType::Alias {
            self.pop_state();
            let tok = self.skip_token();
            let mut ev = Event::new(EvType::Alias, tok.start);
            ev.anchor = tok.value;
            self.set_event_comments(&mut ev);
            return Ok(ev);
        }
        let mut start_mark = tstart;
        let mut tag_token = false;
        let mut tag_handle = Vec::new();
        let mut tag_suffix = Vec::new();
        let mut anchor = Vec::new();
        let mut tag_mark = Mark::default();
        if typ == TokType::Anchor {
            let tok = self.skip_token();
            anchor = tok.value;
            start_mark = tok.start;
            (typ, tstart) = self.peek()?;
            if typ == TokType::Tag {
                let tok = self.skip_token();
                tag_token = true;
                tag_handle = tok.value;
                tag_suffix = tok.suffix;
                tag_mark = tok.start;
                (typ, tstart) = self.peek()?;
            }
        } else if typ == TokType::Tag {
            let tok = self.skip_token();
            tag_token = true;
            tag_handle = tok.value;
            tag_suffix = tok.suffix;
            start_mark = tok.start;
            tag_mark = tok.start;
            (typ, tstart) = self.peek()?;
            if typ == TokType::Anchor {
                let tok = self.skip_token();
                anchor = tok.value;
                (typ, tstart) = self.peek()?;
            }
        }

        let mut tag = Vec::new();
        if tag_token {
            if tag_handle.is_empty() {
                tag = tag_suffix;
            } else {
                for (h, p) in &self.tag_directives {
                    if *h == tag_handle {
                        tag = p.clone();
                        tag.extend_from_slice(&tag_suffix);
                        break;
                    }
                }
                if tag.is_empty() {
                    return self.set_error_context(start_mark, "found undefined tag handle", tag_mark);
                }
            }
        }

        if indentless_sequence && typ == TokType::BlockEntry {
            self.state = State::IndentlessSequenceEntry;
            let mut ev = Event::new(EvType::SequenceStart, start_mark);
            ev.anchor = anchor;
            ev.tag = tag;
            return Ok(ev);
        }
        if typ == TokType::Scalar {
            self.pop_state();
            let mut ev = Event::new(EvType::Scalar, start_mark);
            self.set_event_comments(&mut ev);
            let tok = self.skip_token();
            ev.anchor = anchor;
            ev.tag = tag;
            ev.value = tok.value;
            ev.style = tok.style;
            return Ok(ev);
        }
        if typ == TokType::FlowSequenceStart {
            self.state = State::FlowSequenceFirstEntry;
            let mut ev = Event::new(EvType::SequenceStart, start_mark);
            ev.anchor = anchor;
            ev.tag = tag;
            ev.flow = true;
            self.set_event_comments(&mut ev);
            return Ok(ev);
        }
        if typ == TokType::FlowMappingStart {
            self.state = State::FlowMappingFirstKey;
            let mut ev = Event::new(EvType::MappingStart, start_mark);
            ev.anchor = anchor;
            ev.tag = tag;
            ev.flow = true;
            self.set_event_comments(&mut ev);
            return Ok(ev);
        }
        if block && typ == TokType::BlockSequenceStart {
            self.state = State::BlockSequenceFirstEntry;
            let mut ev = Event::new(EvType::SequenceStart, start_mark);
            ev.anchor = anchor;
            ev.tag = tag;
            if !self.stem_comment.is_empty() {
                ev.head_comment = std::mem::take(&mut self.stem_comment);
            }
            return Ok(ev);
        }
        if block && typ == TokType::BlockMappingStart {
            self.state = State::BlockMappingFirstKey;
            let mut ev = Event::new(EvType::MappingStart, start_mark);
            ev.anchor = anchor;
            ev.tag = tag;
            if !self.stem_comment.is_empty() {
                ev.head_comment = std::mem::take(&mut self.stem_comment);
            }
            return Ok(ev);
        }
        if !anchor.is_empty() || !tag.is_empty() {
            self.pop_state();
            let mut ev = Event::new(EvType::Scalar, start_mark);
            ev.anchor = anchor;
            ev.tag = tag;
            return Ok(ev);
        }
        let _ = block;
        self.set_error_context(start_mark, "did not find expected node content", tstart)
    }

    fn split_stem_comment(&mut self, stem_len: usize) -> Result<(), ()> {
        if stem_len == 0 {
            return Ok(());
        }
        let (typ, _) = self.peek()?;
        if typ != TokType::BlockSequenceStart && typ != TokType::BlockMappingStart {
            return Ok(());
        }
        let stem_len = stem_len.min(self.head_comment.len());
        self.stem_comment = self.head_comment[..stem_len].to_vec();
        if self.head_comment.len() == stem_len {
            self.head_comment.clear();
        } else {
            self.head_comment = self.head_comment[stem_len + 1..].to_vec();
        }
        Ok(())
    }

    fn parse_block_sequence_entry(&mut self, first: bool) -> PR {
        if first {
            let (_, start) = self.peek()?;
            self.marks.push(start);
            self.skip_token();
        }
        let (typ, start) = self.peek()?;
        if typ == TokType::BlockEntry {
            let tok_end = self.scanner.tokens.front().map(|t| t.end).unwrap_or_default();
            let prior_head_len = self.head_comment.len();
            self.skip_token();
            self.split_stem_comment(prior_head_len)?;
            let (typ, _) = self.peek()?;
            if typ != TokType::BlockEntry && typ != TokType::BlockEnd {
                self.states.push(State::BlockSequenceEntry);
                return self.parse_node(true, false);
            }
            self.state = State::BlockSequenceEntry;
            return Ok(self.empty_scalar(tok_end));
        }
        if typ == TokType::BlockEnd {
            self.pop_state();
            self.marks.pop();
            self.skip_token();
            return Ok(Event::new(EvType::SequenceEnd, start));
        }
        let context_mark = self.marks.pop().unwrap_or_default();
        self.set_error_context(context_mark, "did not find expected '-' indicator", start)
    }

    fn parse_indentless_sequence_entry(&mut self) -> PR {
        let (typ, start) = self.peek()?;
        if typ == TokType::BlockEntry {
            let tok_end = self.scanner.tokens.front().map(|t| t.end).unwrap_or_default();
            let prior_head_len = self.head_comment.len();
            self.skip_token();
            self.split_stem_comment(prior_head_len)?;
            let (typ, _) = self.peek()?;
            if typ != TokType::BlockEntry && typ != TokType::Key && typ != TokType::Value && typ != TokType::BlockEnd {
                self.states.push(State::IndentlessSequenceEntry);
                return self.parse_node(true, false);
            }
            self.state = State::IndentlessSequenceEntry;
            return Ok(self.empty_scalar(tok_end));
        }
        self.pop_state();
        Ok(Event::new(EvType::SequenceEnd, start))
    }

    fn parse_block_mapping_key(&mut self, first: bool) -> PR {
        if first {
            let (_, start) = self.peek()?;
            self.marks.push(start);
            self.skip_token();
        }
        let (typ, start) = self.peek()?;
        if typ == TokType::Key {
            let tok_end = self.scanner.tokens.front().map(|t| t.end).unwrap_or_default();
            self.skip_token();
            let (typ, _) = self.peek()?;
            if typ != TokType::Key && typ != TokType::Value && typ != TokType::BlockEnd {
                self.states.push(State::BlockMappingValue);
                return self.parse_node(true, true);
            }
            self.state = State::BlockMappingValue;
            return Ok(self.empty_scalar(tok_end));
        } else if typ == TokType::BlockEnd {
            self.pop_state();
            self.marks.pop();
            let mut ev = Event::new(EvType::MappingEnd, start);
            self.set_event_comments(&mut ev);
            self.skip_token();
            return Ok(ev);
        }
        let context_mark = self.marks.pop().unwrap_or_default();
        self.set_error_context(context_mark, "did not find expected key", start)
    }

    fn parse_block_mapping_value(&mut self) -> PR {
        let (typ, start) = self.peek()?;
        if typ == TokType::Value {
            let tok_end = self.scanner.tokens.front().map(|t| t.end).unwrap_or_default();
            self.skip_token();
            let (typ, _) = self.peek()?;
            if typ != TokType::Key && typ != TokType::Value && typ != TokType::BlockEnd {
                self.states.push(State::BlockMappingKey);
                return self.parse_node(true, true);
            }
            self.state = State::BlockMappingKey;
            return Ok(self.empty_scalar(tok_end));
        }
        self.state = State::BlockMappingKey;
        Ok(self.empty_scalar(start))
    }

    fn parse_flow_sequence_entry(&mut self, first: bool) -> PR {
        if first {
            let (_, start) = self.peek()?;
            self.marks.push(start);
            self.skip_token();
        }
        let (mut typ, mut start) = self.peek()?;
        if typ != TokType::FlowSequenceEnd {
            if !first {
                if typ == TokType::FlowEntry {
                    self.skip_token();
                    (typ, start) = self.peek()?;
                } else {
                    let context_mark = self.marks.pop().unwrap_or_default();
                    return self.set_error_context(context_mark, "did not find expected ',' or ']'", start);
                }
            }
            if typ == TokType::Key {
                self.state = State::FlowSequenceEntryMappingKey;
                let mut ev = Event::new(EvType::MappingStart, start);
                ev.flow = true;
                self.skip_token();
                return Ok(ev);
            } else if typ != TokType::FlowSequenceEnd {
                self.states.push(State::FlowSequenceEntry);
                return self.parse_node(false, false);
            }
        }
        self.pop_state();
        self.marks.pop();
        let mut ev = Event::new(EvType::SequenceEnd, start);
        self.set_event_comments(&mut ev);
        self.skip_token();
        Ok(ev)
    }

    fn parse_flow_sequence_entry_mapping_key(&mut self) -> PR {
        let (typ, _) = self.peek()?;
        if typ != TokType::Value && typ != TokType::FlowEntry && typ != TokType::FlowSequenceEnd {
            self.states.push(State::FlowSequenceEntryMappingValue);
            return self.parse_node(false, false);
        }
        let tok_end = self.scanner.tokens.front().map(|t| t.end).unwrap_or_default();
        self.skip_token();
        self.state = State::FlowSequenceEntryMappingValue;
        Ok(self.empty_scalar(tok_end))
    }

    fn parse_flow_sequence_entry_mapping_value(&mut self) -> PR {
        let (typ, mut start) = self.peek()?;
        if typ == TokType::Value {
            self.skip_token();
            let (typ2, start2) = self.peek()?;
            if typ2 != TokType::FlowEntry && typ2 != TokType::FlowSequenceEnd {
                self.states.push(State::FlowSequenceEntryMappingEnd);
                return self.parse_node(false, false);
            }
            // go-yaml shadows `token` here but uses the outer one below.
            let _ = start2;
        }
        self.state = State::FlowSequenceEntryMappingEnd;
        if typ != TokType::Value {
            start = self.peek()?.1;
        }
        Ok(self.empty_scalar(start))
    }

    fn parse_flow_sequence_entry_mapping_end(&mut self) -> PR {
        let (_, start) = self.peek()?;
        self.state = State::FlowSequenceEntry;
        Ok(Event::new(EvType::MappingEnd, start))
    }

    fn parse_flow_mapping_key(&mut self, first: bool) -> PR {
        if first {
            let (_, start) = self.peek()?;
            self.marks.push(start);
            self.skip_token();
        }
        let (mut typ, mut start) = self.peek()?;
        if typ != TokType::FlowMappingEnd {
            if !first {
                if typ == TokType::FlowEntry {
                    self.skip_token();
                    (typ, start) = self.peek()?;
                } else {
                    let context_mark = self.marks.pop().unwrap_or_default();
                    return self.set_error_context(context_mark, "did not find expected ',' or '}'", start);
                }
            }
            if typ == TokType::Key {
                self.skip_token();
                let (typ, start) = self.peek()?;
                if typ != TokType::Value && typ != TokType::FlowEntry && typ != TokType::FlowMappingEnd {
                    self.states.push(State::FlowMappingValue);
                    return self.parse_node(false, false);
                }
                self.state = State::FlowMappingValue;
                return Ok(self.empty_scalar(start));
            } else if typ != TokType::FlowMappingEnd {
                self.states.push(State::FlowMappingEmptyValue);
                return self.parse_node(false, false);
            }
        }
        self.pop_state();
        self.marks.pop();
        let mut ev = Event::new(EvType::MappingEnd, start);
        self.set_event_comments(&mut ev);
        self.skip_token();
        Ok(ev)
    }

    fn parse_flow_mapping_value(&mut self, empty: bool) -> PR {
        let (typ, start) = self.peek()?;
        if empty {
            self.state = State::FlowMappingKey;
            return Ok(self.empty_scalar(start));
        }
        let mut start = start;
        if typ == TokType::Value {
            self.skip_token();
            let (typ, s2) = self.peek()?;
            start = s2;
            if typ != TokType::FlowEntry && typ != TokType::FlowMappingEnd {
                self.states.push(State::FlowMappingKey);
                return self.parse_node(false, false);
            }
        }
        self.state = State::FlowMappingKey;
        Ok(self.empty_scalar(start))
    }

    fn empty_scalar(&self, mark: Mark) -> Event {
        Event::new(EvType::Scalar, mark)
    }

    fn process_directives(&mut self) -> Result<(), ()> {
        let mut has_version = false;
        let (mut typ, mut start) = self.peek()?;
        while typ == TokType::VersionDirective || typ == TokType::TagDirective {
            let tok = self.skip_token();
            if typ == TokType::VersionDirective {
                if has_version {
                    self.set_error("found duplicate %YAML directive", start)?;
                }
                if tok.major != 1 || tok.minor != 1 {
                    self.set_error("found incompatible YAML document", start)?;
                }
                has_version = true;
            } else {
                if self.tag_directives.iter().any(|(h, _)| *h == tok.value) {
                    self.set_error("found duplicate %TAG directive", start)?;
                }
                self.tag_directives.push((tok.value, tok.suffix));
            }
            (typ, start) = self.peek()?;
        }
        for (h, p) in [(b"!".as_slice(), b"!".as_slice()), (b"!!", b"tag:yaml.org,2002:")] {
            if !self.tag_directives.iter().any(|(hh, _)| hh == h) {
                self.tag_directives.push((h.to_vec(), p.to_vec()));
            }
        }
        Ok(())
    }
}
