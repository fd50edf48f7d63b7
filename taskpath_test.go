package heddle_test

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest"
	"github.com/heddle-go/heddle/internal/wire"
)

// taskPathEnvelopeCases are messages beyond the wire fixtures whose
// payload or metadata sit at the edge of what a map[string]any can hold.
var taskPathEnvelopeCases = []string{
	`{"worker_type":"echo","payload":{"n":1e400}}`,
	`{"worker_type":"echo","payload":{"n":-1e400}}`,
	`{"worker_type":"echo","payload":{"n":1e-400}}`,
	`{"worker_type":"echo","payload":{"n":1E308,"m":[1.5e3,true,null,"x"]}}`,
	`{"worker_type":"echo","payload":{"deep":{"a":[{"b":1e999}]}}}`,
	`{"worker_type":"echo","payload":{"big":` + strings.Repeat("9", 400) + `}}`,
	`{"worker_type":"echo","payload":{"big":` + strings.Repeat("9", 299) + `}}`,
	`{"worker_type":"echo","payload":{"s":"1e999","t":"\"1e999\\"}}`,
	`{"worker_type":"echo","payload":{},"metadata":{"n":1e400}}`,
	`{"worker_type":"echo","payload":{},"metadata":null}`,
	`{"worker_type":"echo","payload":{"a":1},"payload":{"n":1e400}}`,
	`{"worker_type":"echo","payload":{"n":1e400},"payload":{"a":1}}`,
	`{"worker_type":"echo","payload":{"n":1e400},"model_tier":"huge"}`,
	`{"task_id":"t1","worker_type":"echo","payload":{"n":-0.5e-3,"x":"\u00e9\ud83d\ude00"}}`,
	` {"task_id":"t1","worker_type":"echo","payload" : { "n" : 12 } , "metadata" : { } } `,
}

// taskPathCompareDecodes requires the envelope decode of data to give the
// full decode's verdict, error text and envelope fields.
func taskPathCompareDecodes(t *testing.T, data []byte) {
	t.Helper()
	full, fullErr := heddle.DecodeTaskMessage(data)
	env, envErr := heddle.TaskPathDecodeEnvelope(data)
	if (fullErr == nil) != (envErr == nil) || fullErr != nil && fullErr.Error() != envErr.Error() {
		t.Fatalf("verdicts differ on %q:\nfull:     %v\nenvelope: %v", data, fullErr, envErr)
	}
	if env.Payload != nil || env.Metadata != nil {
		t.Fatalf("the envelope decode of %q built payload %v and metadata %v", data, env.Payload, env.Metadata)
	}
	// Fields the decoder fills with fresh values when absent cannot match.
	var top map[string]json.RawMessage
	_ = json.Unmarshal(data, &top)
	if _, ok := top["task_id"]; ok && full.TaskID != env.TaskID {
		t.Fatalf("task_id differs on %q: %q and %q", data, full.TaskID, env.TaskID)
	}
	if _, ok := top["created_at"]; ok && !full.CreatedAt.Equal(env.CreatedAt) {
		t.Fatalf("created_at differs on %q: %v and %v", data, full.CreatedAt, env.CreatedAt)
	}
	full.TaskID, env.TaskID = "", ""
	full.CreatedAt = env.CreatedAt
	full.Payload, full.Metadata = nil, nil
	if !reflect.DeepEqual(full, env) {
		t.Fatalf("decodes of %q differ:\nfull:     %+v\nenvelope: %+v", data, full, env)
	}
}

func TestTaskPathEnvelopeDecodeGivesTheFullDecodesVerdictOnEveryFixture(t *testing.T) {
	n := 0
	for _, f := range contracttest.WireFixtureFiles() {
		t.Run(f.Name, func(t *testing.T) { taskPathCompareDecodes(t, f.Data) })
		n++
	}
	for _, c := range taskPathEnvelopeCases {
		taskPathCompareDecodes(t, []byte(c))
	}
	if n == 0 {
		t.Fatal("no wire fixtures")
	}
}

func TestTaskPathEnvelopeDecodeRejectsNumbersBeyondFloat64LikeTheFullDecode(t *testing.T) {
	data := []byte(`{"worker_type":"echo","payload":{"n":1e400}}`)
	_, err := heddle.TaskPathDecodeEnvelope(data)
	if err == nil || !strings.Contains(err.Error(), "payload") || !strings.Contains(err.Error(), "1e400") {
		t.Fatalf("envelope decode of %s: got %v, want an invalid payload naming 1e400", data, err)
	}
}

// taskPathCompareObjectDecode requires the fast object decoder to give
// json.Unmarshal's map or error for raw, a valid JSON object.
func taskPathCompareObjectDecode(t *testing.T, raw []byte) {
	t.Helper()
	var want map[string]any
	wantErr := json.Unmarshal(raw, &want)
	got, err := heddle.TaskPathDecodeObject(raw)
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("errors differ on %q: %v, encoding/json %v", raw, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("values differ on %q:\ngot  %#v\nwant %#v", raw, got, want)
	}
	if err == nil {
		var v any
		_ = json.Unmarshal(raw, &v)
		gotOut, err := heddle.TaskPathDecodeOutput(bytes.TrimSpace(raw))
		if err != nil || !reflect.DeepEqual(gotOut, v) {
			t.Fatalf("output decode of %q: %#v, %v; want %#v", raw, gotOut, err, v)
		}
	}
}

// taskPathCompareEncode requires the fast encoder to write v as
// json.Marshal does, or to decline.
func taskPathCompareEncode(t *testing.T, v any) {
	t.Helper()
	want, wantErr := json.Marshal(v)
	got, ok := heddle.TaskPathAppendValue(v)
	if ok && (wantErr != nil || !bytes.Equal(got, want)) {
		t.Fatalf("encodings of %#v differ:\ngot  %s\nwant %s (%v)", v, got, want, wantErr)
	}
	if m, isMap := v.(map[string]any); isMap && m != nil {
		got, err := heddle.TaskPathAppendObject(m)
		if (err == nil) != (wantErr == nil) || err == nil && !bytes.Equal(got, want) {
			t.Fatalf("appendObject of %#v: %s, %v; json.Marshal %s, %v", v, got, err, want, wantErr)
		}
	}
}

var taskPathObjects = []string{
	`{}`,
	` { "a" : [ 1 , 2.5 , -0 , -0.0 , 1e3 , 1E-7 , 12345678901234567890 ] , "b" : { } , "c" : [ ] } `,
	`{"s":"plain","e":"tab\tnl\nquote\"back\\slash\/","u":"\u00e9\u2028\u2029\ud83d\ude00","bad":"\ud800"}`,
	`{"html":"<a href=\"x\">&amp;</a>","ctl":"\u0000\u0001\b\f\u001f\u007f"}`,
	"{\"raw utf8\":\"é😀\",\"invalid\":\"\xff\xfe\",\"k\xff\":1}",
	`{"dup":1,"dup":2,"d\u0075p":3}`,
	`{"lits":[true,false,null],"nested":{"a":{"b":{"c":[[[{}]]]}}}}`,
	`{"n":1e400}`,
	`{"n":[0,-1e400]}`,
	`{"n":1e-400,"m":4.9e-324,"x":1.7976931348623157e308}`,
	`{"n":1e21,"m":1e20,"o":0.000001,"p":0.0000001,"q":123456789e-20}`,
}

func TestTaskPathObjectDecodeMatchesEncodingJSON(t *testing.T) {
	for _, raw := range taskPathObjects {
		taskPathCompareObjectDecode(t, []byte(raw))
	}
	for _, f := range contracttest.WireFixtureFiles() {
		if d := bytes.TrimSpace(f.Data); json.Valid(d) && len(d) > 0 && d[0] == '{' {
			taskPathCompareObjectDecode(t, d)
		}
	}
}

func TestTaskPathEncodeMatchesJSONMarshal(t *testing.T) {
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	values := []any{
		nil, true, "x", 1.5, math.Copysign(0, -1), 1e21, 1e-7, 1e-9, 123456.789, 5e-324, math.MaxFloat64,
		map[string]any(nil), []any(nil), []any{}, map[string]any{},
		map[string]any{"b": 1.0, "a": []any{"<>&", "\b\f\x00\x1f\x7f", "\xff", "\u2028\u2029", nil, map[string]any{"z": nil}}},
		map[string]any{"int": 3, "typed": []string{"a"}, "num": json.Number("12")},
		map[string]any{"nan": math.NaN()},
		map[string]any{"inf": math.Inf(1)},
		cyclic,
	}
	for _, v := range values {
		taskPathCompareEncode(t, v)
	}
	deep := map[string]any{}
	for range 200 {
		deep = map[string]any{"d": deep}
	}
	taskPathCompareEncode(t, deep)
	for _, raw := range taskPathObjects {
		var v any
		if json.Unmarshal([]byte(raw), &v) == nil {
			taskPathCompareEncode(t, v)
		}
	}
}

// taskPathCompareValid requires the decoder's validity check to accept
// only what json.Valid accepts, and every valid document of at most
// moderate depth.
func taskPathCompareValid(t *testing.T, data []byte) {
	t.Helper()
	got, want := heddle.TaskPathValid(data), json.Valid(data)
	if got && !want || want && !got && bytes.Count(data, []byte("["))+bytes.Count(data, []byte("{")) < 400 {
		t.Fatalf("validity of %q: %v, json.Valid %v", data, got, want)
	}
}

func TestTaskPathValidityCheckAgreesWithJSONValid(t *testing.T) {
	docs := []string{
		``, ` `, `{`, `}`, `{}`, `[]`, `[`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `{"a":1}x`, `"x"`, `"x`,
		`0`, `-0`, `-`, `01`, `1.`, `1.5`, `.5`, `1e`, `1e+`, `1e+5`, `1E-05`, `-1.5e10`, `1ee5`, `+1`,
		`true`, `tru`, `truex`, `false`, `null`, `nul`, `nulll`, `[true,false,null]`,
		`"\u00e9"`, `"\u00g9"`, `"\u00e"`, `"\x"`, `"\/\b\f\n\r\t\"\\"`, "\"\x01\"", "\"\x7f\xff\"",
		` { "a" : [ 1 , { } , [ ] ] } `, "\t\r\n{}\n", `{"a":{"b":[1,2,{"c":null}]}}`, `{"a":1}{}`,
		strings.Repeat("[", 600) + strings.Repeat("]", 600),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	}
	for _, d := range docs {
		taskPathCompareValid(t, []byte(d))
	}
	for _, f := range contracttest.WireFixtureFiles() {
		taskPathCompareValid(t, f.Data)
	}
}

// taskPathCompareSplit requires the one-pass check and split to accept
// only valid JSON objects, to split them exactly as splitObject does after
// json.Valid, and to flag every number decoderNumbersFit doubts.
func taskPathCompareSplit(t *testing.T, data []byte) {
	t.Helper()
	members, big, ok := heddle.TaskPathSplitValid(data)
	trimmed := bytes.TrimSpace(data)
	isObject := json.Valid(data) && trimmed[0] == '{'
	if !ok {
		if isObject && bytes.Count(data, []byte("["))+bytes.Count(data, []byte("{")) < 400 {
			t.Fatalf("the one-pass split declined %q, a valid object", data)
		}
		return
	}
	if !isObject {
		t.Fatalf("the one-pass split accepted %q, which is not a valid JSON object", data)
	}
	want := heddle.TaskPathSplitObject(trimmed)
	if len(members) != len(want) {
		t.Fatalf("split of %q: %d members, splitObject %d", data, len(members), len(want))
	}
	for i := range want {
		if !bytes.Equal(members[i].Key, want[i].Key) || !bytes.Equal(members[i].Val, want[i].Val) {
			t.Fatalf("member %d of %q: %q: %q; splitObject %q: %q", i, data, members[i].Key, members[i].Val, want[i].Key, want[i].Val)
		}
	}
	if !big && !heddle.TaskPathNumbersFit(trimmed) {
		t.Fatalf("%q has a number beyond float64's sure range, not flagged", data)
	}
}

func TestTaskPathOneSplitAgreesWithJSONValidAndSplitObject(t *testing.T) {
	docs := []string{
		`{}`, ` { } `, `{"a":1}`, ` {"a" : 1 , "b":[1,{"c":"}"}] } `, `{"a":1,}`, `{"a":1}}`, `{"a":1} x`, `{"a"}`,
		`{"a\u0062":1,"a\"b":2}`, "{\"k\xff\":1}", `{"n":1e5}`, `{"n":1E5}`, `{"n":-0.5}`, `{"n":01}`,
		`{"s":"1e400"}`, `[1]`, `"x"`, `1`, ``, `{`, `{"a":[}`, `{"a":1 "b":2}`,
		`{"n":` + strings.Repeat("9", 299) + `}`, `{"n":` + strings.Repeat("9", 300) + `}`,
		`{"d":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`,
	}
	for _, d := range append(docs, append(taskPathEnvelopeCases, taskPathObjects...)...) {
		taskPathCompareSplit(t, []byte(d))
	}
	for _, f := range contracttest.WireFixtureFiles() {
		taskPathCompareSplit(t, f.Data)
	}
}

// taskPathCompareTime requires the copy-free timestamp reader to give
// ParseTime's time, exactly, whenever it answers.
func taskPathCompareTime(t *testing.T, s string) (answered bool) {
	t.Helper()
	got, ok := heddle.TaskPathParseWireTime([]byte(s))
	if !ok {
		return false
	}
	want, err := wire.ParseTime(s)
	if err != nil {
		t.Fatalf("parseWireTime accepts %q as %v; ParseTime rejects it: %v", s, got, err)
	}
	if got != want {
		t.Fatalf("times of %q differ: %#v, ParseTime %#v", s, got, want)
	}
	return true
}

func TestTaskPathTimeReaderAgreesWithParseTime(t *testing.T) {
	answered := []string{
		"2024-05-01T12:30:45Z", "2024-05-01t12:30:45z", "2024-05-01 12:30:45", "2024-05-01T12:30:45.123456Z",
		"2024-05-01T12:30:45.1234567891234+02:30", "2024-05-01T00:00:00-23:59", "2024-02-29T23:59:59.9Z",
		"2000-02-29T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999+00:00", "2024-05-01T12:30:45.5",
	}
	for _, s := range answered {
		if !taskPathCompareTime(t, s) {
			t.Errorf("parseWireTime declined %q, which ParseTime reads", s)
		}
	}
	declined := []string{
		"", "2024-05-01", "2024-05-01T12:30", "2024-13-01T00:00:00Z", "2024-00-01T00:00:00Z", "2023-02-29T00:00:00Z",
		"1900-02-29T00:00:00Z", "2024-04-31T00:00:00Z", "2024-05-01T24:00:00Z", "2024-05-01T12:60:00Z",
		"2024-05-01T12:30:60Z", "2024-05-01T12:30:45.Z", "2024-05-01T12:30:45+24:00", "2024-05-01T12:30:45+02:60",
		"2024-05-01T12:30:45+0200", "2024-05-01T12:30:45 Z", "2024-05-01X12:30:45Z", "2024-5-01T12:30:45Z",
		"+024-05-01T12:30:45Z", "2024-05-01T12:30:45,5Z", "2024-05-01T12:30:45ZZ",
	}
	for _, s := range declined {
		if taskPathCompareTime(t, s) {
			t.Errorf("parseWireTime read %q, which ParseTime rejects", s)
		}
	}
}

func FuzzTaskPathTime(f *testing.F) {
	for _, s := range []string{"2024-05-01T12:30:45.123456Z", "2024-02-29 23:59:59+05:30", "0000-01-01T00:00:00.000000001-00:01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		answered := taskPathCompareTime(t, s)
		if _, err := wire.ParseTime(s); err == nil && !answered {
			t.Fatalf("parseWireTime declined %q, which ParseTime reads", s)
		}
	})
}

// FuzzTaskPathDecodes: the Router's envelope decode gives the full
// decode's verdict and error on every input; the fast object decoder and
// encoder agree with encoding/json.
func FuzzTaskPathDecodes(f *testing.F) {
	for _, fx := range contracttest.WireFixtureFiles() {
		f.Add(fx.Data)
	}
	for _, c := range append(taskPathEnvelopeCases, taskPathObjects...) {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		taskPathCompareValid(t, data)
		taskPathCompareSplit(t, data)
		taskPathCompareDecodes(t, data)
		if d := bytes.TrimSpace(data); json.Valid(d) && len(d) > 0 && d[0] == '{' {
			taskPathCompareObjectDecode(t, d)
			var v any
			if json.Unmarshal(d, &v) == nil {
				taskPathCompareEncode(t, v)
			}
		}
	})
}

// taskPathCompareTokens requires the token check to accept s exactly when
// the subjects built from it are valid publish subjects.
func taskPathCompareTokens(t *testing.T, s string) {
	t.Helper()
	if s == "" {
		return // the callers report an empty value as required
	}
	got := heddle.TaskPathSubjectTokensValid(s)
	wk := bus.ValidatePublishSubject(heddle.WorkerSubject(s, heddle.TierStandard)) == nil
	result := bus.ValidatePublishSubject(heddle.ResultSubject(s)) == nil
	if got != wk || got != result {
		t.Fatalf("token check of %q: %v; worker subject valid %v, result subject valid %v", s, got, wk, result)
	}
}

func TestTaskPathTokenCheckAgreesWithTheSubjectCheck(t *testing.T) {
	for _, s := range []string{"echo", "a.b", "a-b_c", "é", ".", "a.", ".a", "a..b", "*", ">", "a.*", "a.>", "*a", "a>",
		"a b", "a\tb", "a\nb", "a\rb", "a\fb", "a\vb", "a\u00a0b", "x.y.z"} {
		taskPathCompareTokens(t, s)
	}
}

func FuzzTaskPathTokens(f *testing.F) {
	f.Add("echo.v2")
	f.Add("a.*.b")
	f.Fuzz(taskPathCompareTokens)
}

func TestTaskPathObjectDecodeKeepsNegativeZeroAndSmallIntegersExact(t *testing.T) {
	raw := []byte(`{"neg":-0,"negf":-0.0,"zero":0,"one":1.0,"top":255,"over":256,"half":1.5}`)
	taskPathCompareObjectDecode(t, raw)
	m, err := heddle.TaskPathDecodeObject(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"neg", "negf"} {
		if f, ok := m[k].(float64); !ok || f != 0 || !math.Signbit(f) {
			t.Errorf("%s = %#v, want negative zero", k, m[k])
		}
	}
	if f := m["zero"].(float64); math.Signbit(f) {
		t.Errorf("zero = %v, has its sign bit set", f)
	}
	want := map[string]float64{"one": 1, "top": 255, "over": 256, "half": 1.5}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %v", k, m[k], v)
		}
	}
}
