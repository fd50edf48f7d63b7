package contracttest

import (
	"bytes"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/schemas"
)

//go:embed testdata/wire/*.json testdata/wire/*/*.json testdata/wire/*/invalid/*.json
var wireFS embed.FS

const wireDir = "testdata/wire"

// WireFixture is one golden wire document: a message as the Python Heddle
// mesh (or the Go SDK) writes it, or an invalid one.
type WireFixture struct {
	// Name is the file's path under testdata/wire without ".json", such as
	// "task_message/python_default" or "task_message/invalid/bad_tier".
	Name string
	// Type is the message type: TaskMessage, TaskResult, OrchestratorGoal
	// or DeadLetter.
	Type string
	// Valid says whether the document must decode.
	Valid bool
	// Note says what the fixture shows.
	Note string
	// Fields, for an invalid fixture, are exactly the fields its error
	// names ("" for a problem with the whole document, such as bad JSON).
	Fields []string
	// Want, for a valid fixture, holds fields its re-encoded form must have,
	// compared as JSON values.
	Want map[string]json.RawMessage
	// WantOriginal, for a valid DeadLetter, is the exact original message
	// the envelope must give back for replay.
	WantOriginal []byte
	// Data is the document.
	Data []byte
}

type wireManifest struct {
	Fixtures []struct {
		File               string                     `json:"file"`
		Type               string                     `json:"type"`
		Valid              bool                       `json:"valid"`
		Note               string                     `json:"note"`
		Fields             []string                   `json:"fields"`
		Want               map[string]json.RawMessage `json:"want"`
		WantOriginalBase64 *string                    `json:"want_original_base64"`
	} `json:"fixtures"`
}

// WireFixtureFiles returns the golden wire fixtures, embedded in this
// package, in manifest order. It is the seed corpus of the decoding fuzz
// targets and the input of WireFixtures. It panics if the embedded
// manifest is inconsistent, which the package's own tests rule out.
func WireFixtureFiles() []WireFixture {
	fixtures, err := loadWireFixtures()
	if err != nil {
		panic("contracttest: " + err.Error())
	}
	return fixtures
}

func loadWireFixtures() ([]WireFixture, error) {
	raw, err := wireFS.ReadFile(wireDir + "/manifest.json")
	if err != nil {
		return nil, err
	}
	var m wireManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("wire manifest: %w", err)
	}
	out := make([]WireFixture, 0, len(m.Fixtures))
	for _, e := range m.Fixtures {
		data, err := wireFS.ReadFile(path.Join(wireDir, e.File))
		if err != nil {
			return nil, fmt.Errorf("wire manifest entry %s: %w", e.File, err)
		}
		f := WireFixture{
			Name:   strings.TrimSuffix(e.File, ".json"),
			Type:   e.Type,
			Valid:  e.Valid,
			Note:   e.Note,
			Fields: e.Fields,
			Want:   e.Want,
			Data:   data,
		}
		if e.WantOriginalBase64 != nil {
			if f.WantOriginal, err = base64.StdEncoding.DecodeString(*e.WantOriginalBase64); err != nil {
				return nil, fmt.Errorf("wire manifest entry %s: want_original_base64: %w", e.File, err)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// wireFilesOnDisk lists the fixture documents embedded beside the
// manifest, so a test can check that each is listed.
func wireFilesOnDisk() ([]string, error) {
	var files []string
	err := fs.WalkDir(wireFS, wireDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == wireDir+"/manifest.json" || !strings.HasSuffix(p, ".json") {
			return err
		}
		files = append(files, strings.TrimPrefix(p, wireDir+"/"))
		return nil
	})
	return files, err
}

// wireCodec decodes, validates and encodes one message type.
type wireCodec struct {
	decode func([]byte) (any, error)
	encode func(any) ([]byte, error)
	schema func() []byte
}

var wireCodecs = map[string]wireCodec{
	"TaskMessage": {
		decode: func(b []byte) (any, error) { return heddle.DecodeTaskMessage(b) },
		encode: func(v any) ([]byte, error) { return v.(heddle.TaskMessage).Encode() },
		schema: schemas.TaskMessage,
	},
	"TaskResult": {
		decode: func(b []byte) (any, error) { return heddle.DecodeTaskResult(b) },
		encode: func(v any) ([]byte, error) { return v.(heddle.TaskResult).Encode() },
		schema: schemas.TaskResult,
	},
	"OrchestratorGoal": {
		decode: func(b []byte) (any, error) { return heddle.DecodeOrchestratorGoal(b) },
		encode: func(v any) ([]byte, error) { return v.(heddle.OrchestratorGoal).Encode() },
		schema: schemas.OrchestratorGoal,
	},
	"DeadLetter": {
		decode: func(b []byte) (any, error) { return heddle.DecodeDeadLetter(b) },
		encode: func(v any) ([]byte, error) { return v.(heddle.DeadLetter).Encode() },
		schema: schemas.DeadLetter,
	},
}

// WireFixtures runs every golden wire fixture as a subtest, proving that
// this build of the SDK reads and writes the Python Heddle's wire format:
//
//   - a valid fixture decodes and validates; encoding it and decoding the
//     result gives the same message, and encoding that gives the same
//     bytes; its re-encoded form holds the fixture's Want fields; a
//     DeadLetter gives back its exact original;
//   - an invalid fixture is rejected with a *heddle.ValidationError
//     (matching heddle.ErrInvalidMessage) naming exactly the fixture's
//     Fields;
//   - the exported envelope schema (schemas.TaskMessage, ...) accepts
//     every valid fixture and its re-encoded form, and rejects every
//     invalid fixture, reporting each named field by its path.
func WireFixtures(t *testing.T) {
	t.Helper()
	fixtures, err := loadWireFixtures()
	if err != nil {
		t.Fatal(err)
	}
	schemas := map[string]*contracts.Schema{}
	for typ, c := range wireCodecs {
		s, err := contracts.NewSchema(c.schema())
		if err != nil {
			t.Fatalf("the %s envelope schema does not compile: %v", typ, err)
		}
		schemas[typ] = s
	}
	for _, f := range fixtures {
		t.Run(f.Name, func(t *testing.T) {
			c, ok := wireCodecs[f.Type]
			if !ok {
				t.Fatalf("unknown message type %q", f.Type)
			}
			if f.Valid {
				checkValidFixture(t, f, c, schemas[f.Type])
			} else {
				checkInvalidFixture(t, f, c, schemas[f.Type])
			}
		})
	}
}

func checkValidFixture(t *testing.T, f WireFixture, c wireCodec, schema *contracts.Schema) {
	first, err := c.decode(f.Data)
	if err != nil {
		t.Fatalf("%s\ndecode: %v", f.Note, err)
	}
	if err := first.(interface{ Validate() error }).Validate(); err != nil {
		t.Fatalf("Validate after decode: %v", err)
	}
	enc1, err := c.encode(first)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	second, err := c.decode(enc1)
	if err != nil {
		t.Fatalf("decoding the re-encoded message: %v\n%s", err, enc1)
	}
	if !reflect.DeepEqual(first, second) {
		t.Errorf("decode → encode → decode changed the message:\nfirst  %#v\nsecond %#v", first, second)
	}
	enc2, err := c.encode(second)
	if err != nil {
		t.Fatalf("encode again: %v", err)
	}
	if !bytes.Equal(enc1, enc2) {
		t.Errorf("encoding is not stable:\n%s\n%s", enc1, enc2)
	}
	if len(f.Want) > 0 {
		var got map[string]json.RawMessage
		if err := json.Unmarshal(enc1, &got); err != nil {
			t.Fatalf("re-encoded form is not a JSON object: %v", err)
		}
		for field, want := range f.Want {
			if !jsonEqual(got[field], want) {
				t.Errorf("re-encoded %s = %s, want %s", field, got[field], want)
			}
		}
	}
	if f.WantOriginal != nil {
		if got := first.(heddle.DeadLetter).Original(); !bytes.Equal(got, f.WantOriginal) {
			t.Errorf("Original() = %q, want %q", got, f.WantOriginal)
		}
		if got := second.(heddle.DeadLetter).Original(); !bytes.Equal(got, f.WantOriginal) {
			t.Errorf("Original() after a round trip = %q, want %q", got, f.WantOriginal)
		}
	}
	if err := schema.Validate(json.RawMessage(f.Data)); err != nil {
		t.Errorf("the envelope schema rejects the fixture: %v", err)
	}
	if err := schema.Validate(json.RawMessage(enc1)); err != nil {
		t.Errorf("the envelope schema rejects the re-encoded fixture: %v\n%s", err, enc1)
	}
}

func checkInvalidFixture(t *testing.T, f WireFixture, c wireCodec, schema *contracts.Schema) {
	_, err := c.decode(f.Data)
	if err == nil {
		t.Fatalf("%s\ndecoded without error; want an error naming %q", f.Note, f.Fields)
	}
	if !errors.Is(err, heddle.ErrInvalidMessage) {
		t.Errorf("error %v does not match heddle.ErrInvalidMessage", err)
	}
	var ve *heddle.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *heddle.ValidationError", err, err)
	}
	if ve.Type != f.Type {
		t.Errorf("error type %q, want %q", ve.Type, f.Type)
	}
	var named []string
	for _, fe := range ve.Fields {
		if !slices.Contains(named, fe.Field) {
			named = append(named, fe.Field)
		}
	}
	if !reflect.DeepEqual(named, f.Fields) {
		t.Errorf("%s\nerror names fields %q, want %q\nerror: %v", f.Note, named, f.Fields, err)
	}
	serr := schema.Validate(json.RawMessage(f.Data))
	var sve *contracts.ValidationError
	if !errors.As(serr, &sve) {
		t.Fatalf("the envelope schema accepts the invalid fixture (error %v)", serr)
	}
	for _, field := range f.Fields {
		if field == "" {
			continue
		}
		found := false
		for _, v := range sve.Violations {
			if v.Path == "/"+field || strings.HasPrefix(v.Path, "/"+field+"/") {
				found = true
			}
		}
		if !found {
			t.Errorf("the envelope schema's violations do not name %s: %v", field, serr)
		}
	}
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
