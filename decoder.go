package heddle

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Field presence rules for the decoder.
type presence int

const (
	required presence = iota // absent is an error; null is an error
	optional                 // absent takes the default; null is an error
	nullable                 // absent and null both mean empty
)

type jsonKindT byte

const (
	kindNull jsonKindT = iota
	kindString
	kindNumber
	kindBool
	kindObject
	kindArray
)

func (k jsonKindT) String() string {
	return [...]string{"null", "string", "number", "boolean", "object", "array"}[k]
}

// kindOf classifies a syntactically valid JSON value by its first byte.
func kindOf(raw []byte) jsonKindT {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return kindNull
	}
	switch raw[0] {
	case '"':
		return kindString
	case '{':
		return kindObject
	case '[':
		return kindArray
	case 't', 'f':
		return kindBool
	case 'n':
		return kindNull
	}
	return kindNumber
}

func jsonKind(raw []byte) string { return kindOf(raw).String() }

// member is one top-level name/value pair of the document being decoded.
type member struct {
	key   []byte // the unescaped name
	val   []byte // the raw value, a slice of the document
	taken bool
}

// decoder reads the top-level members of one message, recording problems.
// The document is checked and split into its members in one pass (see
// decoderSplitValid), or, when that pass is not sure, checked with
// json.Valid and then split by a scan that relies on that validity. The
// members are slices of the document: nothing is copied.
//
// A decoder is used in place (var d decoder; d.init(...)) and holds up to
// decoderStore members itself, so that it stays off the heap. (It never
// points to itself, which would send it there: a document with more
// members has them copied to more.)
type decoder struct {
	p        problems
	isObject bool // the document is a JSON object
	// envelope: free-form objects (payload, metadata, ...) are checked
	// exactly as they would be decoded, with the same verdicts and error
	// texts, but not materialised; object returns nil for them.
	envelope bool
	// bigNumbers: some number in the document may lie beyond float64 (see
	// decoderNumbersFit); false means none can.
	bigNumbers bool
	bad        map[string]bool // fields already reported
	n          int             // members in store
	store      [decoderStore]member
	more       []member // every member, when there are more than decoderStore
}

// decoderStore is the number of members a decoder holds without
// allocating: every field of the largest message type, and one more.
const decoderStore = 12

// init checks data and splits it into its members.
func (d *decoder) init(typ string, data []byte) {
	d.p.typ = typ
	if members, ok := decoderSplitValid(data, d.store[:0], &d.bigNumbers); ok {
		d.isObject = true
		d.keep(members)
		return
	}
	d.bigNumbers = true
	if !decoderValid(data) && !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		if err == nil { // json.Valid and json.Unmarshal disagree; never expected
			d.p.add("", "malformed JSON")
		} else {
			d.p.add("", "malformed JSON: %v", err)
		}
		return
	}
	data = bytes.TrimSpace(data)
	if data[0] != '{' {
		d.p.add("", "expected a JSON object, got %s", jsonKind(data))
		return
	}
	d.isObject = true
	d.keep(splitObject(data, d.store[:0]))
}

// keep records members, split into d.store (or, beyond it, elsewhere).
func (d *decoder) keep(members []member) {
	if len(members) <= len(d.store) {
		d.n = len(members)
		return
	}
	d.more = append([]member(nil), members...)
}

// members returns the document's members.
func (d *decoder) members() []member {
	if d.more != nil {
		return d.more
	}
	return d.store[:d.n]
}

// splitObject appends the members of obj, a valid JSON object, to dst.
func splitObject(obj []byte, dst []member) []member {
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
		dst = append(dst, member{key: key, val: obj[i:vend]})
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

func (d *decoder) fail(field, format string, args ...any) {
	d.p.add(field, format, args...)
	if d.bad == nil {
		d.bad = map[string]bool{}
	}
	d.bad[field] = true
}

// check takes the findings of a type's Validate checks on the decoded
// value, keeps those on fields the decoder has not already reported, and
// returns every problem in wire field order.
func (d *decoder) check(p *problems, order []string) error {
	for _, f := range p.fields {
		if !d.bad[f.Field] {
			d.p.fields = append(d.p.fields, f)
		}
	}
	if len(d.p.fields) > 1 {
		slices.SortStableFunc(d.p.fields, func(a, b FieldError) int {
			return slices.Index(order, a.Field) - slices.Index(order, b.Field)
		})
	}
	return d.p.err()
}

// take returns the value of the member called name; when the name is
// repeated the last one counts, as in encoding/json and Python.
func (d *decoder) take(name string) ([]byte, bool) {
	var val []byte
	found := false
	members := d.members()
	for i := range members {
		m := &members[i]
		if !m.taken && string(m.key) == name {
			m.taken = true
			val, found = m.val, true
		}
	}
	return val, found
}

// extra returns copies of the members left after the known ones were
// taken.
func (d *decoder) extra() map[string]json.RawMessage {
	var out map[string]json.RawMessage
	for _, m := range d.members() {
		if m.taken {
			continue
		}
		if out == nil {
			out = map[string]json.RawMessage{}
		}
		out[string(m.key)] = bytes.Clone(m.val)
	}
	return out
}

func (d *decoder) missing(name string, pr presence) {
	if pr == required {
		d.fail(name, "required")
	}
}

// str reads a string field. def supplies the value of an absent optional
// field.
func (d *decoder) str(name string, pr presence, def func() string) string {
	return d.strAs(name, pr, def, false)
}

// strAs is str; intern shares the string of a short value seen before
// (see jsonIntern), for fields such as worker_type whose values repeat.
func (d *decoder) strAs(name string, pr presence, def func() string, intern bool) string {
	raw, ok := d.take(name)
	if !ok {
		d.missing(name, pr)
		if def != nil {
			return def()
		}
		return ""
	}
	if pr == nullable && kindOf(raw) == kindNull {
		return ""
	}
	if intern && kindOf(raw) == kindString {
		if inner := raw[1 : len(raw)-1]; len(inner) > 0 && bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			return jsonIntern(inner)
		}
	}
	s, ok := d.stringValue(name, raw)
	if ok && s == "" && pr != nullable {
		d.fail(name, "must not be empty")
	}
	return s
}

// lenientString reads a string that may be absent, null or of another
// type; anything but a string reads as empty.
func (d *decoder) lenientString(name string) string {
	raw, ok := d.take(name)
	if !ok || kindOf(raw) != kindString {
		return ""
	}
	s, _ := d.stringValue(name, raw)
	return s
}

func (d *decoder) stringValue(name string, raw []byte) (string, bool) {
	if kindOf(raw) != kindString {
		d.fail(name, "expected string, got %s", jsonKind(raw))
		return "", false
	}
	// The document is valid JSON, so a string without escapes needs no
	// decoding beyond dropping its quotes.
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		d.fail(name, "invalid string: %v", err)
		return "", false
	}
	return s, true
}

func (d *decoder) object(name string, pr presence, def map[string]any) map[string]any {
	return d.objectRaw(name, pr, def, nil)
}

// objectRaw is object, also setting *rawOut (when not nil) to the value's
// bytes in the document.
func (d *decoder) objectRaw(name string, pr presence, def map[string]any, rawOut *[]byte) map[string]any {
	raw, ok := d.take(name)
	if ok && rawOut != nil {
		*rawOut = raw
	}
	if !ok {
		d.missing(name, pr)
		return def
	}
	k := kindOf(raw)
	if k == kindNull && pr == nullable {
		return nil
	}
	if k != kindObject {
		d.fail(name, "expected object, got %s", k)
		return def
	}
	if d.envelope && (!d.bigNumbers || decoderNumbersFit(raw)) {
		// raw is a valid JSON object (the document is valid): decoding it
		// into map[string]any can fail only on a number beyond float64,
		// which decoderNumbersFit rules out. Otherwise decode it below for
		// the exact error.
		return nil
	}
	m, err := decoderObject(raw)
	if err != nil {
		d.fail(name, "invalid object: %v", err)
		return def
	}
	if d.envelope {
		return nil
	}
	return m
}

// decoderNumbersFit reports whether every number in raw, a valid JSON
// value, is surely within float64 range: written without exponent and
// with fewer than 300 characters (the largest float64 has 309 integer
// digits). A false answer means only "not sure".
func decoderNumbersFit(raw []byte) bool {
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

func (d *decoder) enum(name, def string, allowed []string) string {
	raw, ok := d.take(name)
	if !ok {
		if def == "" {
			d.fail(name, "required")
		}
		return def
	}
	if kindOf(raw) == kindString {
		// The common case, matched without copying the value.
		inner := raw[1 : len(raw)-1]
		for _, a := range allowed {
			if string(inner) == a {
				return a
			}
		}
	}
	s, ok := d.stringValue(name, raw)
	if !ok {
		return ""
	}
	if !slices.Contains(allowed, s) {
		d.fail(name, "%s", enumProblem(s, allowed))
		return ""
	}
	return s
}

func (d *decoder) integer(name string, def int) int {
	raw, ok := d.take(name)
	if !ok {
		return def
	}
	n, ok := parseInteger(raw)
	if !ok {
		d.fail(name, "expected integer, got %s", describe(raw))
		return def
	}
	return n
}

// parseInteger reads a JSON number with an integral value: 2, 2.0 and 2e0
// are 2 (as pydantic and JSON Schema read them), 2.5 is not an integer.
func parseInteger(raw []byte) (int, bool) {
	if kindOf(raw) != kindNumber {
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
	if k := kindOf(raw); k != kindNumber {
		return k.String()
	}
	return string(raw)
}

func (d *decoder) tokenUsage(name string) map[string]int {
	raw, ok := d.take(name)
	if !ok {
		return map[string]int{}
	}
	if k := kindOf(raw); k != kindObject {
		d.fail(name, "expected object of integers, got %s", k)
		return map[string]int{}
	}
	members := splitObject(raw, nil)
	out := make(map[string]int, len(members))
	for _, m := range members {
		n, ok := parseInteger(m.val)
		if !ok {
			d.fail(name, "%q: expected integer, got %s", m.key, describe(m.val))
			return map[string]int{}
		}
		out[string(m.key)] = n
	}
	return out
}

// time reads a timestamp; an absent optional one is the current time.
func (d *decoder) time(name string, pr presence) time.Time {
	raw, ok := d.take(name)
	if !ok {
		d.missing(name, pr)
		return now()
	}
	return d.timeValue(name, raw)
}

func (d *decoder) timeValue(name string, raw []byte) time.Time {
	if kindOf(raw) == kindString {
		if t, ok := parseWireTime(raw[1 : len(raw)-1]); ok {
			return t
		}
	}
	s, ok := d.stringValue(name, raw)
	if !ok {
		return time.Time{}
	}
	t, err := ParseTime(s)
	if err != nil {
		d.fail(name, "%q is not an RFC 3339 timestamp", s)
		return time.Time{}
	}
	return t
}

// parseWireTime reads b as ParseTime reads string(b), without copying it,
// for the timestamps it is sure of: every field in range, as time.Parse
// requires. ok false means only "not sure"; ParseTime then decides.
func parseWireTime(b []byte) (t time.Time, ok bool) {
	if len(b) < 19 {
		return t, false
	}
	num := func(from, to int) int {
		n := 0
		for _, c := range b[from:to] {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, sec := num(11, 13), num(14, 16), num(17, 19)
	if b[4] != '-' || b[7] != '-' || b[10] != 'T' && b[10] != 't' && b[10] != ' ' || b[13] != ':' || b[16] != ':' ||
		year < 0 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return t, false
	}
	i, nsec := 19, 0
	if i < len(b) && b[i] == '.' {
		j := i + 1
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == i+1 {
			return t, false
		}
		// The first nine digits count, as in time.Parse.
		scale := int(time.Second / 10)
		for k := i + 1; k < j && k < i+10; k++ {
			nsec += int(b[k]-'0') * scale
			scale /= 10
		}
		i = j
	}
	offset := 0
	switch rest := b[i:]; {
	case len(rest) == 0:
	case len(rest) == 1 && (rest[0] == 'Z' || rest[0] == 'z'):
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		hh, mm := num(i+1, i+3), num(i+4, i+6)
		if hh < 0 || hh > 23 || mm < 0 || mm > 59 {
			return t, false
		}
		if offset = (hh*60 + mm) * 60; rest[0] == '-' {
			offset = -offset
		}
	default:
		return t, false
	}
	t = time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second).Truncate(time.Microsecond), true
}

// daysIn is the number of days of month in year (proleptic Gregorian).
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
