package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Presence is the rule for an absent or null field.
type Presence int

// The presence rules of the wire format.
const (
	Required Presence = iota // absent is an error; null is an error
	Optional                 // absent takes the default; null is an error
	Nullable                 // absent and null both mean empty
	// RequiredText is Required for a string that may be empty: absent and
	// null are errors, "" is a value (a goal's instruction, as schema v1
	// and pydantic have it).
	RequiredText
)

// Problem is one finding about one field; Field is empty when it concerns
// the whole document.
type Problem struct {
	Field   string
	Problem string
}

// Problems accumulates the findings about one message.
type Problems []Problem

// Add records a problem with field.
func (p *Problems) Add(field, format string, args ...any) {
	*p = append(*p, Problem{Field: field, Problem: fmt.Sprintf(format, args...)})
}

// Kind is the kind of a JSON value.
type Kind byte

const (
	kindNull Kind = iota
	kindString
	kindNumber
	kindBool
	kindObject
	KindArray
)

func (k Kind) String() string {
	return [...]string{"null", "string", "number", "boolean", "object", "array"}[k]
}

// KindOf classifies a syntactically valid JSON value by its first byte
// after JSON's white space. (It skips the white space itself: bytes.TrimLeft
// with a cutset builds the set on every call, which the task path, calling
// KindOf for every member it reads, paid for in CPU.)
func KindOf(raw []byte) Kind {
	i := skipSpace(raw, 0)
	if i == len(raw) {
		return kindNull
	}
	switch raw[i] {
	case '"':
		return kindString
	case '{':
		return kindObject
	case '[':
		return KindArray
	case 't', 'f':
		return kindBool
	case 'n':
		return kindNull
	}
	return kindNumber
}

func KindName(raw []byte) string { return KindOf(raw).String() }

// Member is one top-level name/value pair of the document being decoded.
type Member struct {
	Key   []byte // the unescaped name
	Val   []byte // the raw value, a slice of the document
	taken bool
}

// Decoder reads the top-level members of one message, recording problems.
// The document is checked and split into its members in one pass (see
// SplitValid), or, when that pass is not sure, checked with
// json.Valid and then split by a scan that relies on that validity. The
// members are slices of the document: nothing is copied.
//
// A Decoder is used in place (var d Decoder; d.Init(data)) and holds up to
// storeSize members itself, so that it stays off the heap. (It never
// points to itself, which would send it there: a document with more
// members has them copied to more.)
type Decoder struct {
	// Problems holds what was found wrong so far.
	Problems Problems
	// Envelope: free-form objects (payload, metadata, ...) are checked
	// exactly as they would be decoded, with the same verdicts and error
	// texts, but not materialised; Object returns nil for them.
	Envelope bool
	// Now gives the time of an absent optional timestamp; nil means the
	// current time in UTC, truncated to microseconds.
	Now      func() time.Time
	isObject bool // the document is a JSON object
	// bigNumbers: some number in the document may lie beyond float64 (see
	// NumbersFit); false means none can.
	bigNumbers bool
	bad        map[string]bool // fields already reported
	n          int             // members in store
	store      [storeSize]Member
	more       []Member // every Member, when there are more than storeSize
}

// storeSize is the number of members a Decoder holds without
// allocating: every field of the largest message type, and one more.
const storeSize = 12

// init checks data and splits it into its members.
func (d *Decoder) Init(data []byte) {
	if members, ok := SplitValid(data, d.store[:0], &d.bigNumbers); ok {
		d.isObject = true
		d.keep(members)
		return
	}
	d.bigNumbers = true
	if !Valid(data) && !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		if err == nil { // json.Valid and json.Unmarshal disagree; never expected
			d.Problems.Add("", "malformed JSON")
		} else {
			d.Problems.Add("", "malformed JSON: %v", err)
		}
		return
	}
	data = bytes.TrimSpace(data)
	if data[0] != '{' {
		d.Problems.Add("", "expected a JSON object, got %s", KindName(data))
		return
	}
	d.isObject = true
	d.keep(SplitObject(data, d.store[:0]))
}

// keep records members, split into d.store (or, beyond it, elsewhere).
func (d *Decoder) keep(members []Member) {
	if len(members) <= len(d.store) {
		d.n = len(members)
		return
	}
	d.more = append([]Member(nil), members...)
}

// members returns the document's members.
func (d *Decoder) members() []Member {
	if d.more != nil {
		return d.more
	}
	return d.store[:d.n]
}

// SplitObject appends the members of obj, a valid JSON object, to dst.
func SplitObject(obj []byte, dst []Member) []Member {
	i := skipSpace(obj, 1)
	for i < len(obj) && obj[i] == '"' {
		end := skipString(obj, i)
		key := obj[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) {
			var s string
			_ = json.Unmarshal(obj[i:end], &s) // valid: the document is
			key = []byte(s)
		}
		i = skipSpace(obj, end)
		i = skipSpace(obj, i+1) // past ':'
		vend := skipValue(obj, i)
		dst = append(dst, Member{Key: key, Val: obj[i:vend]})
		i = skipSpace(obj, vend)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return dst
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i].
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	return j
}

func (d *Decoder) Fail(field, format string, args ...any) {
	d.Problems.Add(field, format, args...)
	if d.bad == nil {
		d.bad = map[string]bool{}
	}
	d.bad[field] = true
}

// Check merges more (the findings of a type's own validation of the
// decoded value) into the decoder's problems, keeping those on fields the
// decoder has not already reported, and returns every problem in the
// order of the field names in order.
func (d *Decoder) Check(more Problems, order []string) Problems {
	for _, f := range more {
		if !d.bad[f.Field] {
			d.Problems = append(d.Problems, f)
		}
	}
	if len(d.Problems) > 1 {
		slices.SortStableFunc(d.Problems, func(a, b Problem) int {
			return slices.Index(order, a.Field) - slices.Index(order, b.Field)
		})
	}
	return d.Problems
}

// IsObject reports whether the document is a JSON object (Init found no
// problem with its syntax or kind).
func (d *Decoder) IsObject() bool { return d.isObject }

// take returns the value of the Member called name; when the name is
// repeated the last one counts, as in encoding/json and Python.
func (d *Decoder) Take(name string) ([]byte, bool) {
	var val []byte
	found := false
	members := d.members()
	for i := range members {
		m := &members[i]
		if !m.taken && string(m.Key) == name {
			m.taken = true
			val, found = m.Val, true
		}
	}
	return val, found
}

// extra returns copies of the members left after the known ones were
// taken.
func (d *Decoder) Extra() map[string]json.RawMessage {
	var out map[string]json.RawMessage
	for _, m := range d.members() {
		if m.taken {
			continue
		}
		if out == nil {
			out = map[string]json.RawMessage{}
		}
		out[string(m.Key)] = bytes.Clone(m.Val)
	}
	return out
}

func (d *Decoder) Missing(name string, pr Presence) {
	if pr == Required || pr == RequiredText {
		d.Fail(name, "required")
	}
}

// str reads a string field. def supplies the value of an absent Optional
// field.
func (d *Decoder) Str(name string, pr Presence, def func() string) string {
	raw, ok := d.Take(name)
	return d.str(name, raw, ok, pr, def)
}

// str is Str of the member taken already: raw, or none when ok is false.
func (d *Decoder) str(name string, raw []byte, ok bool, pr Presence, def func() string) string {
	if !ok {
		d.Missing(name, pr)
		if def != nil {
			return def()
		}
		return ""
	}
	if pr == Nullable && KindOf(raw) == kindNull {
		return ""
	}
	s, ok := d.StringValue(name, raw)
	if ok && s == "" && pr != Nullable && pr != RequiredText {
		d.Fail(name, "must not be empty")
	}
	return s
}

// lenientString reads a string that may be absent, null or of another
// type; anything but a string reads as empty.
func (d *Decoder) LenientString(name string) string {
	raw, ok := d.Take(name)
	if !ok || KindOf(raw) != kindString {
		return ""
	}
	s, _ := d.StringValue(name, raw)
	return s
}

func (d *Decoder) StringValue(name string, raw []byte) (string, bool) {
	if KindOf(raw) != kindString {
		d.Fail(name, "expected string, got %s", KindName(raw))
		return "", false
	}
	// The document is valid JSON, so a string without escapes needs no
	// decoding beyond dropping its quotes.
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		d.Fail(name, "invalid string: %v", err)
		return "", false
	}
	return s, true
}

func (d *Decoder) Object(name string, pr Presence, def map[string]any) map[string]any {
	return d.ObjectRaw(name, pr, def, nil)
}

// objectRaw is object, also setting *rawOut (when not nil) to the value's
// bytes in the document.
func (d *Decoder) ObjectRaw(name string, pr Presence, def map[string]any, rawOut *[]byte) map[string]any {
	raw, ok := d.Take(name)
	if ok && rawOut != nil {
		*rawOut = raw
	}
	if !ok {
		d.Missing(name, pr)
		return def
	}
	k := KindOf(raw)
	if k == kindNull && pr == Nullable {
		return nil
	}
	if k != kindObject {
		d.Fail(name, "expected object, got %s", k)
		return def
	}
	if d.Envelope && (!d.bigNumbers || NumbersFit(raw)) {
		// raw is a valid JSON object (the document is valid): decoding it
		// into map[string]any can fail only on a number beyond float64,
		// which NumbersFit rules out. Otherwise decode it below for
		// the exact error.
		return nil
	}
	m, err := Object(raw)
	if err != nil {
		d.Fail(name, "invalid object: %v", err)
		return def
	}
	if d.Envelope {
		return nil
	}
	return m
}

// NumbersInRange reports whether every number in raw, a valid JSON
// value, decodes to a finite float64: encoding/json (and every JSON
// schema check built on it) refuses a value holding one that does not,
// such as 1e999. Numbers NumbersFit vouches for are not parsed.
func NumbersInRange(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '"':
			i = skipString(raw, i) - 1
		case c == '-' || (c >= '0' && c <= '9'):
			j, plain := i+1, true
			for j < len(raw) && (raw[j] >= '0' && raw[j] <= '9' || raw[j] == '.' || raw[j] == 'e' || raw[j] == 'E' || raw[j] == '+' || raw[j] == '-') {
				if raw[j] == 'e' || raw[j] == 'E' {
					plain = false
				}
				j++
			}
			if !plain || j-i >= 300 {
				if _, err := strconv.ParseFloat(string(raw[i:j]), 64); err != nil {
					return false
				}
			}
			i = j - 1
		}
	}
	return true
}

// NumbersFit reports whether every number in raw, a valid JSON
// value, is surely within float64 range: written without exponent and
// with fewer than 300 characters (the largest float64 has 309 integer
// digits). A false answer means only "not sure".
func NumbersFit(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '"':
			i = skipString(raw, i) - 1
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(raw) && (raw[j] >= '0' && raw[j] <= '9' || raw[j] == '.') {
				j++
			}
			if j-i >= 300 || j < len(raw) && (raw[j] == 'e' || raw[j] == 'E') {
				return false
			}
			i = j - 1
		}
	}
	return true
}

func (d *Decoder) Enum(name, def string, allowed []string) string {
	raw, ok := d.Take(name)
	if !ok {
		if def == "" {
			d.Fail(name, "required")
		}
		return def
	}
	if KindOf(raw) == kindString {
		// The common case, matched without copying the value.
		inner := raw[1 : len(raw)-1]
		for _, a := range allowed {
			if string(inner) == a {
				return a
			}
		}
	}
	s, ok := d.StringValue(name, raw)
	if !ok {
		return ""
	}
	if !slices.Contains(allowed, s) {
		d.Fail(name, "%s", EnumProblem(s, allowed))
		return ""
	}
	return s
}

func (d *Decoder) Integer(name string, def int) int {
	raw, ok := d.Take(name)
	if !ok {
		return def
	}
	n, ok := ParseInteger(raw)
	if !ok {
		d.Fail(name, "expected integer, got %s", describe(raw))
		return def
	}
	return n
}

// ParseInteger reads a JSON number with an integral value: 2, 2.0 and 2e0
// are 2 (as pydantic and JSON Schema read them), 2.5 is not an integer.
func ParseInteger(raw []byte) (int, bool) {
	if KindOf(raw) != kindNumber {
		return 0, false
	}
	if n, err := strconv.ParseInt(string(raw), 10, strconv.IntSize); err == nil {
		return int(n), true
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != math.Trunc(f) || f < float64(math.MinInt) || f >= -float64(math.MinInt) {
		return 0, false
	}
	return int(f), true
}

// describe names a bad value: a number as written, anything else by kind.
func describe(raw []byte) string {
	if k := KindOf(raw); k != kindNumber {
		return k.String()
	}
	return string(raw)
}

func (d *Decoder) TokenUsage(name string) map[string]int {
	raw, ok := d.Take(name)
	if !ok {
		return map[string]int{}
	}
	if k := KindOf(raw); k != kindObject {
		d.Fail(name, "expected object of integers, got %s", k)
		return map[string]int{}
	}
	var buf [4]Member // the members of a usual token_usage, on the stack
	members := SplitObject(raw, buf[:0])
	out := make(map[string]int, len(members))
	for _, m := range members {
		n, ok := ParseInteger(m.Val)
		if !ok {
			d.Fail(name, "%q: expected integer, got %s", m.Key, describe(m.Val))
			return map[string]int{}
		}
		out[Known(m.Key, "prompt_tokens", "completion_tokens", "total_tokens")] = n
	}
	return out
}

// time reads a timestamp; an absent Optional one is the current time.
func (d *Decoder) Time(name string, pr Presence) time.Time {
	raw, ok := d.Take(name)
	if !ok {
		d.Missing(name, pr)
		if d.Now != nil {
			return d.Now()
		}
		return time.Now().UTC().Truncate(time.Microsecond)
	}
	return d.TimeValue(name, raw)
}

func (d *Decoder) TimeValue(name string, raw []byte) time.Time {
	if KindOf(raw) == kindString {
		if t, ok := ParseTimeFast(raw[1 : len(raw)-1]); ok {
			return t
		}
	}
	s, ok := d.StringValue(name, raw)
	if !ok {
		return time.Time{}
	}
	t, err := ParseTime(s)
	if err != nil {
		d.Fail(name, "%q is not an RFC 3339 timestamp", s)
		return time.Time{}
	}
	return t
}

// PeekString returns the string value of the top-level member key of
// data, read as the Decoder reads members: keys match exactly and the last
// of a repeated key counts. ok is false when data is not a JSON object, or
// the member is absent or not a string. Every reader of one member of a
// message (a task_id to answer, a goal_id to reply to) uses it, so that
// all agree with the full decode.
func PeekString(data []byte, key string) (string, bool) {
	var d Decoder
	d.Init(data)
	if !d.IsObject() {
		return "", false
	}
	raw, ok := d.Take(key)
	if !ok || KindOf(raw) != kindString {
		return "", false
	}
	return d.StringValue(key, raw)
}
