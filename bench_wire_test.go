package heddle_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracts"
)

// plainTaskMessage is the TaskMessage as encoding/json alone would read and
// write it: the baseline the wire benchmarks compare with.
type plainTaskMessage struct {
	TaskID       string         `json:"task_id"`
	ParentTaskID *string        `json:"parent_task_id"`
	WorkerType   string         `json:"worker_type"`
	Payload      map[string]any `json:"payload"`
	ModelTier    string         `json:"model_tier"`
	Priority     string         `json:"priority"`
	MaxRetries   int            `json:"max_retries"`
	RetryCount   int            `json:"retry_count"`
	CreatedAt    time.Time      `json:"created_at"`
	RequestID    *string        `json:"request_id"`
	Metadata     map[string]any `json:"metadata"`
}

// benchTask returns a representative TaskMessage (a 10-key order payload,
// as a Python orchestrator publishes it) and the contract of its payload.
func benchTask(b *testing.B) ([]byte, *contracts.Contract) {
	payload, err := os.ReadFile(filepath.Join("contracts", "testdata", "order_payload.json"))
	if err != nil {
		b.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(payload, &p); err != nil || len(p) != 10 {
		b.Fatalf("order payload: %d keys, %v", len(p), err)
	}
	m := heddle.NewTaskMessage("order_checker", p)
	m.ParentTaskID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
	m.Metadata = map[string]any{"stage": "check"}
	data, err := m.Encode()
	if err != nil {
		b.Fatal(err)
	}
	c, err := contracts.FromFiles(filepath.Join("contracts", "testdata", "schemas", "order.json"), "")
	if err != nil {
		b.Fatal(err)
	}
	return data, c
}

// BenchmarkWire compares, in one run, encoding/json alone with the SDK's
// strict decode (enums, presence, subjects checked) and encode, and with
// contract validation of the payload a worker gets off the wire.
func BenchmarkWire(b *testing.B) {
	data, contract := benchTask(b)
	msg, err := heddle.DecodeTaskMessage(data)
	if err != nil {
		b.Fatal(err)
	}
	var plain plainTaskMessage
	if err := json.Unmarshal(data, &plain); err != nil {
		b.Fatal(err)
	}
	b.Logf("TaskMessage: %d bytes", len(data))

	b.Run("encoding_json_unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m plainTaskMessage
			if err := json.Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json_marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(&plain); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode_task_message", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := heddle.DecodeTaskMessage(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode_task_message", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := msg.Encode(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("contract_validate_payload", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := contract.ValidateInput(msg.Payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode_and_validate_payload", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, err := heddle.DecodeTaskMessage(data)
			if err != nil {
				b.Fatal(err)
			}
			if err := contract.ValidateInput(m.Payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}
