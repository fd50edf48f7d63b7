package emit

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"testing"
)

// carrierByEncodingJSON is what carrierOf answers, written with
// encoding/json: the reference of the differential tests below.
func carrierByEncodingJSON(raw json.RawMessage) map[string]string {
	var members map[string]json.RawMessage
	if json.Unmarshal(raw, &members) != nil || len(members) == 0 {
		return nil
	}
	carrier := make(map[string]string, len(members))
	for k, v := range members {
		var s string
		if json.Unmarshal(v, &s) == nil && len(bytes.TrimSpace(v)) > 0 && bytes.TrimSpace(v)[0] == '"' {
			carrier[k] = s
		}
	}
	return carrier
}

// injectByEncodingJSON is Inject's _trace_context, written with
// encoding/json: carrier's members, and those of the existing object
// (raw) it does not write, in key order.
func injectByEncodingJSON(carrier map[string]string, raw json.RawMessage) []byte {
	var kept map[string]json.RawMessage
	_ = json.Unmarshal(raw, &kept)
	keys := slices.Sorted(maps.Keys(carrier))
	for k := range kept {
		if _, ok := carrier[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		q, _ := json.Marshal(k)
		b.Write(q)
		b.WriteByte(':')
		if v, ok := carrier[k]; ok {
			q, _ := json.Marshal(v)
			b.Write(q)
		} else {
			b.Write(kept[k])
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}

// fixedPropagator writes its members into every carrier.
type fixedPropagator map[string]string

func (p fixedPropagator) Extract(ctx context.Context, _ map[string]string) context.Context {
	return ctx
}
func (p fixedPropagator) Inject(_ context.Context, carrier map[string]string) {
	maps.Copy(carrier, p)
}

var traceSeeds = []string{
	`{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`,
	`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"a=1"}`,
	`{"traceparent":"x","traceparent":"y","baggage":{"k":[1,2]},"n":1,"s":"\u00e9\"q"}`,
	`{"a\u0041":"b","":""}`, `[]`, `null`, `"x"`, ` { } `, `{"k":"\ud800"}`, `{"k":"` + "\xff" + `"}`,
}

func TestTraceContextReadAndWriteAgreeWithEncodingJSON(t *testing.T) {
	for _, s := range traceSeeds {
		checkTraceContext(t, []byte(s))
	}
}

func FuzzTraceContextAgreesWithEncodingJSON(f *testing.F) {
	for _, s := range traceSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		checkTraceContext(t, raw)
	})
}

func checkTraceContext(t *testing.T, raw []byte) {
	t.Helper()
	got, want := carrierOf(raw), carrierByEncodingJSON(raw)
	if len(got) != len(want) || !maps.Equal(got, want) {
		t.Fatalf("carrierOf(%s) = %v, encoding/json reads %v", raw, got, want)
	}
	prop := fixedPropagator{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	e := &Emitter{prop: prop}
	ext := map[string]json.RawMessage{TraceKey: raw, "other": json.RawMessage(`1`)}
	out := e.Inject(context.Background(), ext)
	if !bytes.Equal(ext[TraceKey], raw) {
		t.Fatalf("Inject changed its argument's _trace_context")
	}
	if string(out["other"]) != "1" {
		t.Fatalf("Inject lost another extension: %v", out)
	}
	if w := injectByEncodingJSON(prop, raw); !bytes.Equal(out[TraceKey], w) {
		t.Fatalf("Inject over %s wrote %s, encoding/json gives %s", raw, out[TraceKey], w)
	}
}
