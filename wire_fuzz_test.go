package heddle_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/schemas"
)

// addWireSeeds seeds f with every golden wire fixture (of every type, so
// mutations mix fields of all messages).
func addWireSeeds(f *testing.F) {
	n := 0
	err := filepath.WalkDir(filepath.Join("contracttest", "testdata", "wire"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") || d.Name() == "manifest.json" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f.Add(b)
		n++
		return nil
	})
	if err != nil || n == 0 {
		f.Fatalf("reading the wire fixtures: %d files, %v", n, err)
	}
}

// checkRejection requires a decode error to be a *ValidationError that
// names at least one problem.
func checkRejection(t *testing.T, typ string, err error) {
	t.Helper()
	var ve *heddle.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, heddle.ErrInvalidMessage) || ve.Type != typ || len(ve.Fields) == 0 {
		t.Fatalf("decode error %v (%T) is not a %s *ValidationError with fields", err, err, typ)
	}
}

func compileEnvelope(f *testing.F, doc []byte) *contracts.Schema {
	s, err := contracts.NewSchema(doc)
	if err != nil {
		f.Fatal(err)
	}
	return s
}

// FuzzDecodeTaskMessage: decoding never panics; a rejection names its
// fields; an accepted message validates, is accepted by the envelope
// schema, and survives encode → decode unchanged with stable bytes.
func FuzzDecodeTaskMessage(f *testing.F) {
	addWireSeeds(f)
	schema := compileEnvelope(f, schemas.TaskMessage())
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := heddle.DecodeTaskMessage(data)
		if err != nil {
			checkRejection(t, "TaskMessage", err)
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("decoded message does not validate: %v", err)
		}
		if err := schema.Validate(json.RawMessage(data)); err != nil {
			t.Fatalf("the decoder accepts %q but the envelope schema rejects it: %v", data, err)
		}
		b, err := m.Encode()
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		m2, err := heddle.DecodeTaskMessage(b)
		if err != nil {
			t.Fatalf("decoding the encoded message: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("decode → encode → decode changed the message:\n%#v\n%#v", m, m2)
		}
		if b2, _ := m2.Encode(); !bytes.Equal(b, b2) {
			t.Fatalf("unstable encoding:\n%s\n%s", b, b2)
		}
	})
}

// FuzzDecodeTaskResult is FuzzDecodeTaskMessage for results.
func FuzzDecodeTaskResult(f *testing.F) {
	addWireSeeds(f)
	schema := compileEnvelope(f, schemas.TaskResult())
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := heddle.DecodeTaskResult(data)
		if err != nil {
			checkRejection(t, "TaskResult", err)
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("decoded result does not validate: %v", err)
		}
		if err := schema.Validate(json.RawMessage(data)); err != nil {
			t.Fatalf("the decoder accepts %q but the envelope schema rejects it: %v", data, err)
		}
		b, err := r.Encode()
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		r2, err := heddle.DecodeTaskResult(b)
		if err != nil {
			t.Fatalf("decoding the encoded result: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("decode → encode → decode changed the result:\n%#v\n%#v", r, r2)
		}
		if b2, _ := r2.Encode(); !bytes.Equal(b, b2) {
			t.Fatalf("unstable encoding:\n%s\n%s", b, b2)
		}
	})
}

// FuzzDeadLetterOriginal: whatever bytes are dead-lettered, the envelope
// is JSON the DeadLetter schema accepts, and decoding it gives back the
// exact bytes for replay.
func FuzzDeadLetterOriginal(f *testing.F) {
	addWireSeeds(f)
	schema := compileEnvelope(f, schemas.DeadLetter())
	f.Fuzz(func(t *testing.T, original []byte) {
		d := heddle.NewDeadLetter("invalid_task_message: fuzz", original)
		b, err := d.Encode()
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		if err := schema.Validate(json.RawMessage(b)); err != nil {
			t.Fatalf("the DeadLetter schema rejects %s: %v", b, err)
		}
		back, err := heddle.DecodeDeadLetter(b)
		if err != nil {
			t.Fatalf("decode: %v\n%s", err, b)
		}
		if !bytes.Equal(back.Original(), original) {
			t.Fatalf("Original() = %q, want %q", back.Original(), original)
		}
		if !reflect.DeepEqual(back, d) {
			t.Fatalf("round trip changed the envelope:\n%#v\n%#v", back, d)
		}
	})
}
