package heddle_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/internal/version"
)

func validHeartbeat() heddle.Heartbeat {
	return heddle.Heartbeat{
		InstanceID: "9b2f7c1e-4d7a-4c55-9d1e-0c1f2e3a4b5c",
		WorkerType: "summarizer",
		Tiers:      []heddle.ModelTier{heddle.TierLocal, heddle.TierStandard},
		QueueGroup: "processors-summarizer",
		Language:   "go",
		SDKVersion: version.SDK,
		Host:       "node-7",
		PID:        4242,
		StartedAt:  time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		SentAt:     time.Date(2026, 12, 1, 10, 0, 30, 123456000, time.UTC),
		Interval:   30 * time.Second,
		InFlight:   2,
		Completed:  17,
		Failed:     1,
		Capacity:   4,
	}
}

func TestHeartbeatRoundTripsInItsWireForm(t *testing.T) {
	hb := validHeartbeat()
	data, err := hb.Encode()
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"instance_id":"9b2f7c1e-4d7a-4c55-9d1e-0c1f2e3a4b5c","worker_type":"summarizer","tiers":["local","standard"],` +
		`"queue_group":"processors-summarizer","language":"go","sdk_version":"` + version.SDK + `","host":"node-7","pid":4242,` +
		`"started_at":"2026-12-01T10:00:00Z","sent_at":"2026-12-01T10:00:30.123456Z","interval_ms":30000,` +
		`"in_flight":2,"completed":17,"failed":1,"capacity":4,"stopping":false}`
	if string(data) != want {
		t.Errorf("encoded\n got %s\nwant %s", data, want)
	}
	got, err := heddle.DecodeHeartbeat(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, hb) {
		t.Errorf("decoded %+v, want %+v", got, hb)
	}

	var viaJSON heddle.Heartbeat
	if err := json.Unmarshal(data, &viaJSON); err != nil || !reflect.DeepEqual(viaJSON, hb) {
		t.Errorf("json.Unmarshal = %+v, %v; want %+v", viaJSON, err, hb)
	}
}

func TestAStoppingHeartbeatWithoutHostOrPIDAndWithUnknownFieldsRoundTrips(t *testing.T) {
	in := `{"instance_id":"i-1","worker_type":"a.b","tiers":["frontier"],"queue_group":"workers-a.b","language":"python",` +
		`"sdk_version":"9.9","host":null,"started_at":"2026-12-01T10:00:00","sent_at":"2026-12-01 10:01:00+00:00",` +
		`"interval_ms":5000.0,"in_flight":0,"completed":0,"failed":0,"capacity":1,"stopping":true,"_zone":{"az":"b"}}`
	hb, err := heddle.DecodeHeartbeat([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if !hb.Stopping || hb.Host != "" || hb.PID != 0 || hb.Interval != 5*time.Second || hb.Subject() != "heddle.workers.heartbeat.a.b" {
		t.Errorf("decoded %+v: want stopping, no host or pid, a 5 s interval, subject heddle.workers.heartbeat.a.b", hb)
	}
	out, err := hb.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"host":null,"started_at"`) || strings.Contains(string(out), `"pid"`) ||
		!strings.HasSuffix(string(out), `"stopping":true,"_zone":{"az":"b"}}`) {
		t.Errorf("re-encoded %s: want a null host, no pid, and the unknown field kept at the end", out)
	}
}

func TestDecodeHeartbeatNamesEveryBadField(t *testing.T) {
	tests := []struct {
		name   string
		doc    string
		fields []string
	}{
		{"an empty object lacks every required field", `{}`,
			[]string{"instance_id", "worker_type", "tiers", "queue_group", "language", "sdk_version", "started_at", "sent_at",
				"interval_ms", "in_flight", "completed", "failed", "capacity"}},
		{"an unknown tier, a repeated tier", `{"tiers":["local","huge","local"]}`, []string{"tiers"}},
		{"no tiers at all", `{"tiers":[]}`, []string{"tiers"}},
		{"negative counters and pid", `{"in_flight":-1,"completed":-2,"failed":-3,"capacity":-4,"pid":-5}`,
			[]string{"pid", "in_flight", "completed", "failed", "capacity"}},
		{"an interval of zero", `{"interval_ms":0}`, []string{"interval_ms"}},
		{"an interval over a day, which would keep a dead worker active for days",
			`{"interval_ms":9223372036854775807}`, []string{"interval_ms"}},
		{"a worker type with a space and a queue group with a wildcard", `{"worker_type":"a b","queue_group":"q.*"}`,
			[]string{"worker_type", "queue_group"}},
		{"an instance id over 256 bytes", `{"instance_id":"` + strings.Repeat("x", 257) + `"}`, []string{"instance_id"}},
		{"stopping that is not a boolean", `{"stopping":"yes"}`, []string{"stopping"}},
		{"a sent_at that is no time", `{"sent_at":"yesterday"}`, []string{"sent_at"}},
	}
	good, err := validHeartbeat().Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := tt.doc
			if doc != `{}` {
				// The bad fields over a valid heartbeat: the last value of
				// a repeated name counts.
				doc = string(good[:len(good)-1]) + "," + doc[1:]
			}
			_, err := heddle.DecodeHeartbeat([]byte(doc))
			var ve *heddle.ValidationError
			if !errors.As(err, &ve) || ve.Type != "Heartbeat" || !errors.Is(err, heddle.ErrInvalidMessage) {
				t.Fatalf("error %v, want a *ValidationError of a Heartbeat", err)
			}
			var named []string
			for _, f := range ve.Fields {
				if len(named) == 0 || named[len(named)-1] != f.Field {
					named = append(named, f.Field)
				}
			}
			if !reflect.DeepEqual(named, tt.fields) {
				t.Errorf("error names %q, want %q\nerror: %v", named, tt.fields, err)
			}
		})
	}
}

func TestEncodeRefusesAnInvalidHeartbeat(t *testing.T) {
	hb := validHeartbeat()
	hb.Tiers = nil
	hb.Interval = 0
	_, err := hb.Encode()
	var ve *heddle.ValidationError
	if !errors.As(err, &ve) || !ve.Has("tiers") || !ve.Has("interval_ms") {
		t.Errorf("Encode() error %v, want one naming tiers and interval_ms", err)
	}
}

func TestHeartbeatSubjectsAreValidAndApartFromEveryPythonHeddleSubject(t *testing.T) {
	subject := heddle.HeartbeatSubject("summarizer")
	if subject != "heddle.workers.heartbeat.summarizer" {
		t.Errorf("HeartbeatSubject = %q", subject)
	}
	if !bus.Match(heddle.SubjectHeartbeats, subject) || !bus.Match(heddle.SubjectHeartbeats, heddle.HeartbeatSubject("a.b")) {
		t.Errorf("%s does not match the heartbeat subjects", heddle.SubjectHeartbeats)
	}
	if bus.Match(heddle.SubjectHeartbeats, heddle.SubjectWorkerRegistry) {
		t.Errorf("%s matches the registry's subject %s", heddle.SubjectHeartbeats, heddle.SubjectWorkerRegistry)
	}
	for _, python := range []string{heddle.SubjectTasksIncoming, heddle.SubjectDeadLetter, heddle.SubjectGoalsIncoming,
		heddle.SubjectControlReload, heddle.SubjectResultsDefault, heddle.WorkerSubject("workers", heddle.TierLocal)} {
		for _, ours := range []string{heddle.SubjectHeartbeats, heddle.SubjectWorkerRegistry} {
			if bus.Match(ours, python) {
				t.Errorf("%s matches the Python Heddle subject %s", ours, python)
			}
		}
	}
	if heddle.DefaultStaleMultiplier*heddle.DefaultHeartbeatInterval != 90*time.Second || heddle.DefaultSweepInterval != time.Minute {
		t.Errorf("liveness defaults %v × %d, sweep %v; want 30 s × 3 = 90 s and 60 s",
			heddle.DefaultHeartbeatInterval, heddle.DefaultStaleMultiplier, heddle.DefaultSweepInterval)
	}
}
