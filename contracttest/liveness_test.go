package contracttest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/contracts"
	"github.com/heddle-go/heddle/registry"
	"github.com/heddle-go/heddle/schemas"
)

// The golden fixtures of the liveness messages, in testdata/liveness: the
// heartbeat a worker publishes (heartbeat/) and a registry's answer on
// heddle.workers.registry (registry/). The valid ones named go_* and
// table, empty_page and error are in the exact form the SDK writes; the
// others are written as another sender might.
const livenessDir = "testdata/liveness"

// livenessInvalid lists each invalid fixture with the field its error
// must name: a heartbeat's wire field, or for a registry answer the JSON
// pointer of the schema violation.
var livenessInvalid = map[string]string{
	"heartbeat/invalid/missing_instance_id.json":          "instance_id",
	"heartbeat/invalid/unknown_tier.json":                 "tiers",
	"heartbeat/invalid/negative_in_flight.json":           "in_flight",
	"heartbeat/invalid/zero_interval.json":                "interval_ms",
	"heartbeat/invalid/stopping_not_boolean.json":         "stopping",
	"heartbeat/invalid/worker_type_with_space.json":       "worker_type",
	"registry/invalid/unknown_status.json":                "/workers/0/status",
	"registry/invalid/heartbeat_without_instance_id.json": "/workers/1/heartbeat",
	"registry/invalid/missing_registry_id.json":           "",
}

// livenessCanonical lists the valid fixtures the SDK writes byte for byte.
var livenessCanonical = []string{
	"heartbeat/go_serving.json", "heartbeat/go_stopping.json",
	"registry/table.json", "registry/empty_page.json",
}

func livenessFixtures(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(livenessDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, filepath.ToSlash(strings.TrimPrefix(p, livenessDir+string(filepath.Separator))))
		}
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("reading %s: %v (%d files)", livenessDir, err, len(files))
	}
	return files
}

func compileSchema(t *testing.T, doc []byte) *contracts.Schema {
	t.Helper()
	s, err := contracts.NewSchema(doc)
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return s
}

func TestEveryLivenessFixtureDecodesOrFailsAndMatchesItsSchema(t *testing.T) {
	heartbeatSchema := compileSchema(t, schemas.Heartbeat())
	registrySchema := compileSchema(t, schemas.HeartbeatRegistry())
	for _, name := range livenessFixtures(t) {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(livenessDir, name))
			if err != nil {
				t.Fatal(err)
			}
			want, invalid := livenessInvalid[name]
			canonical := slices.Contains(livenessCanonical, name)
			switch {
			case strings.HasPrefix(name, "heartbeat/") && invalid:
				checkInvalidHeartbeat(t, data, want, heartbeatSchema)
			case strings.HasPrefix(name, "heartbeat/"):
				checkValidHeartbeat(t, data, canonical, heartbeatSchema)
			case strings.HasPrefix(name, "registry/") && invalid:
				checkInvalidAnswer(t, data, want, registrySchema)
			case strings.HasPrefix(name, "registry/"):
				checkValidAnswer(t, data, canonical, registrySchema)
			default:
				t.Fatalf("a fixture of no known kind")
			}
		})
	}
	for name := range livenessInvalid {
		if _, err := os.Stat(filepath.Join(livenessDir, name)); err != nil {
			t.Errorf("listed fixture %s: %v", name, err)
		}
	}
}

func checkValidHeartbeat(t *testing.T, data []byte, canonical bool, schema *contracts.Schema) {
	hb, err := heddle.DecodeHeartbeat(data)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	enc, err := hb.Encode()
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	again, err := heddle.DecodeHeartbeat(enc)
	if err != nil || !reflect.DeepEqual(again, hb) {
		t.Errorf("decode → encode → decode changed the heartbeat:\n%+v\n%+v (%v)", hb, again, err)
	}
	if canonical && !bytes.Equal(enc, bytes.TrimSpace(data)) {
		t.Errorf("the SDK writes\n%s\nnot the golden\n%s", enc, bytes.TrimSpace(data))
	}
	if !canonical && len(hb.Extra) == 0 {
		t.Errorf("the fixture's unknown fields were not kept")
	}
	for what, doc := range map[string][]byte{"fixture": data, "re-encoded fixture": enc} {
		if err := schema.Validate(json.RawMessage(doc)); err != nil {
			t.Errorf("schemas.Heartbeat rejects the %s: %v", what, err)
		}
	}
}

func checkInvalidHeartbeat(t *testing.T, data []byte, field string, schema *contracts.Schema) {
	_, err := heddle.DecodeHeartbeat(data)
	var ve *heddle.ValidationError
	if !errors.As(err, &ve) || ve.Type != "Heartbeat" {
		t.Fatalf("decode error %v, want a *heddle.ValidationError of a Heartbeat", err)
	}
	var named []string
	for _, f := range ve.Fields {
		named = append(named, f.Field)
	}
	if named = slices.Compact(named); len(named) != 1 || named[0] != field {
		t.Errorf("error names %q, want %s alone: %v", named, field, err)
	}
	checkSchemaRejects(t, schema, data, "/"+field)
}

func checkValidAnswer(t *testing.T, data []byte, canonical bool, schema *contracts.Schema) {
	if err := schema.Validate(json.RawMessage(data)); err != nil {
		t.Errorf("schemas.HeartbeatRegistry rejects the fixture: %v", err)
	}
	var table registry.Table
	err := json.Unmarshal(data, &table)
	if bytes.Contains(data, []byte(`"error":`)) {
		if !errors.Is(err, registry.ErrRefused) || !strings.Contains(err.Error(), "offset: must not be negative") {
			t.Errorf("decoding an error answer: %v, want ErrRefused with the registry's text", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	enc, err := json.Marshal(table)
	if err != nil {
		t.Fatal(err)
	}
	if canonical && !bytes.Equal(enc, bytes.TrimSpace(data)) {
		t.Errorf("the SDK writes\n%s\nnot the golden\n%s", enc, bytes.TrimSpace(data))
	}
	if err := schema.Validate(json.RawMessage(enc)); err != nil {
		t.Errorf("schemas.HeartbeatRegistry rejects the re-encoded fixture: %v", err)
	}
}

func checkInvalidAnswer(t *testing.T, data []byte, path string, schema *contracts.Schema) {
	var table registry.Table
	if err := json.Unmarshal(data, &table); err == nil {
		t.Errorf("registry.Table decodes the invalid fixture: %+v", table)
	}
	checkSchemaRejects(t, schema, data, path)
}

// checkSchemaRejects requires a violation at path or under it ("" for
// one at the root).
func checkSchemaRejects(t *testing.T, schema *contracts.Schema, data []byte, path string) {
	t.Helper()
	err := schema.Validate(json.RawMessage(data))
	var sve *contracts.ValidationError
	if !errors.As(err, &sve) {
		t.Fatalf("the schema accepts the invalid fixture (%v)", err)
	}
	for _, v := range sve.Violations {
		if v.Path == path || strings.HasPrefix(v.Path, path+"/") {
			return
		}
	}
	t.Errorf("the schema's violations do not name %q: %v", path, err)
}

// The registry's schema carries the heartbeat's in its $defs, so that it
// compiles alone; the two must not drift apart.
func TestTheRegistrySchemaHoldsTheHeartbeatSchema(t *testing.T) {
	var hb, reg struct {
		Required   []string       `json:"required"`
		Properties map[string]any `json:"properties"`
		Defs       map[string]struct {
			Required   []string       `json:"required"`
			Properties map[string]any `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(schemas.Heartbeat(), &hb); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(schemas.HeartbeatRegistry(), &reg); err != nil {
		t.Fatal(err)
	}
	def := reg.Defs["heartbeat"]
	if !slices.Equal(def.Required, hb.Required) || !reflect.DeepEqual(def.Properties, hb.Properties) {
		t.Errorf("$defs/heartbeat of schemas.HeartbeatRegistry differs from schemas.Heartbeat")
	}
}
