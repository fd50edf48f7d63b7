package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/membus"
)

type benchItem struct {
	SKU   string  `json:"sku"`
	Qty   int     `json:"qty" jsonschema:"minimum=1"`
	Price float64 `json:"price"`
}

type benchIn struct {
	Customer string      `json:"customer"`
	Items    []benchItem `json:"items"`
}

type benchOut struct {
	Lines int     `json:"lines"`
	Total float64 `json:"total"`
}

func benchHandler(_ context.Context, in benchIn) (benchOut, error) {
	out := benchOut{Lines: len(in.Items)}
	for _, it := range in.Items {
		out.Total += float64(it.Qty) * it.Price
	}
	return out, nil
}

func benchTask(b *testing.B, workerType string, items int) []byte {
	b.Helper()
	list := make([]any, items)
	for i := range list {
		list[i] = map[string]any{"sku": fmt.Sprintf("sku-%d", i), "qty": i + 1, "price": 2.5}
	}
	data, err := heddle.NewTaskMessage(workerType, map[string]any{"customer": "acme", "items": list}).Encode()
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkWorkerInputDecode compares the two ways a typed worker can get
// its In: decoding the payload's own bytes (what the worker does) or
// re-encoding the decoded payload map and decoding that.
func BenchmarkWorkerInputDecode(b *testing.B) {
	for _, items := range []int{3, 100} {
		data := benchTask(b, "bench", items)
		task, err := heddle.DecodeTaskMessage(data)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("items=%d/raw_payload", items), func(b *testing.B) {
			decode := inputDecoder[benchIn]()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decode(&task, data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("items=%d/map_round_trip", items), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				raw, err := json.Marshal(task.Payload)
				if err != nil {
					b.Fatal(err)
				}
				var in benchIn
				if err := json.Unmarshal(raw, &in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWorkerRoundTrip measures one task at a time through a Worker on
// membus: publish the task, wait for its result. The baseline is the same
// exchange with a plain subscriber that answers each message with its own
// bytes, so the difference is the worker's cost (decode, contracts,
// handler, result encode).
func BenchmarkWorkerRoundTrip(b *testing.B) {
	data := benchTask(b, "bench_rt", 3)
	b.Run("baseline=membus_echo", func(b *testing.B) {
		br := membus.New()
		defer br.Close()
		ctx := context.Background()
		sub, err := br.Subscribe(ctx, heddle.WorkerSubject("bench_rt", heddle.TierStandard), func(ctx context.Context, m *bus.Msg) error {
			return br.Publish(ctx, &bus.Msg{Subject: heddle.SubjectResultsDefault, Data: m.Data})
		})
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Unsubscribe()
		benchExchange(b, br, data)
	})
	b.Run("worker=typed", func(b *testing.B) {
		br := membus.New()
		defer br.Close()
		w, err := New(br, "bench_rt", benchHandler, Config{})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		<-w.Ready()
		benchExchange(b, br, data)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		if s := w.Stats(); s.Failed != 0 {
			b.Fatalf("stats %+v", s)
		}
	})
}

func benchExchange(b *testing.B, br bus.Bus, data []byte) {
	ctx := context.Background()
	answered := make(chan struct{}, 1)
	sub, err := br.Subscribe(ctx, heddle.SubjectResultsDefault, func(context.Context, *bus.Msg) error {
		answered <- struct{}{}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	subject := heddle.WorkerSubject("bench_rt", heddle.TierStandard)
	b.ReportAllocs()
	for b.Loop() {
		if err := br.Publish(ctx, &bus.Msg{Subject: subject, Data: data}); err != nil {
			b.Fatal(err)
		}
		<-answered
	}
}

func TestDecodeTaskPayloadGivesThePayloadBytesEncodingJSONReads(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{"a plain message", `{"task_id":"a","payload":{"x":1},"worker_type":"w"}`, `{"x":1}`},
		{"whitespace everywhere", " {\n \"payload\" :\t{ \"x\" : [1, 2] } , \"worker_type\":\"w\"}\n", `{ "x" : [1, 2] }`},
		{"a payload key nested in another field is skipped", `{"worker_type":"w","metadata":{"payload":{"no":1}},"payload":{"yes":1}}`, `{"yes":1}`},
		{"strings holding braces and escaped quotes", `{"worker_type":"w","note":"}\"{[","payload":{"s":"a\"}b"}}`, `{"s":"a\"}b"}`},
		{"an escaped key is the same key", `{"worker_type":"w","pay\u006coad":{"x":2}}`, `{"x":2}`},
		{"a key differing in case is another key", `{"worker_type":"w","payload":{"x":1},"PAYLOAD":{"x":2}}`, `{"x":1}`},
		{"a repeated key keeps its last value", `{"worker_type":"w","payload":{"x":1},"payload":{"x":3}}`, `{"x":3}`},
		{"numbers and literals before it", `{"worker_type":"w","max_retries":2,"parent_task_id":null,"ok":true,"payload":{}}`, `{}`},
		{"a big number in the payload", `{"worker_type":"w","payload":{"n":1e300}}`, `{"n":1e300}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, got, err := decodeTaskPayload([]byte(tt.data))
			if err != nil || string(got) != tt.want {
				t.Errorf("DecodeTaskPayload = %q, %v; want %q", got, err, tt.want)
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tt.data), &fields); err != nil {
				t.Fatal(err)
			}
			if string(fields["payload"]) != tt.want {
				t.Errorf("encoding/json reads %q; the test's expectation is wrong", fields["payload"])
			}
			if raw, err := rawPayload(&m, got); err != nil || string(raw) != tt.want {
				t.Errorf("rawPayload = %q, %v; want %q", raw, err, tt.want)
			}
		})
	}
}

func TestWorkerRawPayloadEncodesTheDecodedPayloadWhenThereAreNoBytes(t *testing.T) {
	m := heddle.TaskMessage{Payload: map[string]any{"b": 1.5, "a": "x"}}
	got, err := rawPayload(&m, nil)
	if err != nil || string(got) != `{"a":"x","b":1.5}` {
		t.Fatalf("rawPayload = %q, %v", got, err)
	}
}

func FuzzDecodeTaskPayload(f *testing.F) {
	f.Add([]byte(`{"task_id":"a","worker_type":"w","payload":{"x":[1,{"y":"}"}]}}`))
	f.Add([]byte(`{"worker_type":"w","payload":{},"pay\u006coad":{"z":null}}`))
	f.Add([]byte(`{"worker_type":"w","payload":{"a":"\\\""},"metadata":{"payload":1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, got, err := decodeTaskPayload(data)
		full, fullErr := heddle.DecodeTaskMessage(data)
		if (err == nil) != (fullErr == nil) || err != nil && err.Error() != fullErr.Error() {
			t.Fatalf("DecodeTaskPayload's verdict %v differs from DecodeTaskMessage's %v", err, fullErr)
		}
		if err != nil {
			if got != nil {
				t.Fatalf("DecodeTaskPayload rejected %q but returned payload bytes %q", data, got)
			}
			return
		}
		if !reflect.DeepEqual(m.Payload, full.Payload) {
			t.Fatalf("payloads differ: %#v and %#v", m.Payload, full.Payload)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(data, &fields); err != nil {
			t.Fatalf("DecodeTaskMessage accepted what encoding/json rejects: %v", err)
		}
		if !bytes.Equal(got, fields["payload"]) {
			t.Fatalf("DecodeTaskPayload's payload is %q; encoding/json reads %q", got, fields["payload"])
		}
	})
}
