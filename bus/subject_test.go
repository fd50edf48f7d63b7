package bus

import (
	"errors"
	"strings"
	"testing"
)

func TestPublishSubjectsAreValidatedTokenByToken(t *testing.T) {
	for _, tc := range []struct {
		subject string
		ok      bool
	}{
		{"heddle.tasks.incoming", true},
		{"a", true},
		{"heddle.results.2f1c-uuid", true},
		{"", false},
		{".a", false},
		{"a.", false},
		{"a..b", false},
		{"a b", false},
		{"a\tb", false},
		{"a.*", false},
		{"a.>", false},
		{"*", false},
	} {
		err := ValidatePublishSubject(tc.subject)
		if (err == nil) != tc.ok {
			t.Errorf("ValidatePublishSubject(%q) = %v, want ok=%v", tc.subject, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadSubject) {
			t.Errorf("ValidatePublishSubject(%q) = %v, want it to wrap ErrBadSubject", tc.subject, err)
		}
	}
}

func TestSubscribeSubjectsMayUseWildcards(t *testing.T) {
	for _, tc := range []struct {
		subject string
		ok      bool
	}{
		{"heddle.tasks.*.local", true},
		{"heddle.results.>", true},
		{">", true},
		{"*.*", true},
		{"a.>.b", false},
		{"a..b", false},
		{"", false},
		{"a. b", false},
	} {
		err := ValidateSubscribeSubject(tc.subject)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateSubscribeSubject(%q) = %v, want ok=%v", tc.subject, err, tc.ok)
		}
	}
}

func TestQueueNamesMustBeNonEmptyWithoutSpaces(t *testing.T) {
	if err := ValidateQueue("workers.echo"); err != nil {
		t.Errorf("ValidateQueue(workers.echo) = %v", err)
	}
	for _, bad := range []string{"", "a b"} {
		if err := ValidateQueue(bad); !errors.Is(err, ErrBadQueue) {
			t.Errorf("ValidateQueue(%q) = %v, want ErrBadQueue", bad, err)
		}
	}
}

func TestMatchFollowsTheNATSWildcardRules(t *testing.T) {
	for _, tc := range []struct {
		pattern, subject string
		want             bool
	}{
		{"a.b", "a.b", true},
		{"a.b", "a.c", false},
		{"a.*", "a.b", true},
		{"a.*", "a", false},
		{"a.*", "a.b.c", false},
		{"*.b", "a.b", true},
		{"a.>", "a.b", true},
		{"a.>", "a.b.c", true},
		{"a.>", "a", false},
		{">", "a", true},
		{">", "a.b.c", true},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.b.d", false},
		{"a.*.>", "a.b", false},
		{"a.*.>", "a.b.c.d", true},
		{"ab", "a", false},
		{"a", "ab", false},
	} {
		if got := Match(tc.pattern, tc.subject); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.subject, got, tc.want)
		}
	}
}

func TestHeadersKeepTheCaseAndEveryValue(t *testing.T) {
	h := Header{}
	h.Add("X-Trace", "1")
	h.Add("X-Trace", "2")
	h.Set("x-trace", "lower")
	if got := h.Values("X-Trace"); len(got) != 2 || got[0] != "1" || got[1] != "2" {
		t.Errorf("Values(X-Trace) = %v", got)
	}
	if h.Get("x-trace") != "lower" || h.Get("X-TRACE") != "" {
		t.Errorf("keys are not case-preserving: %v", h)
	}
	c := h.Clone()
	c.Add("X-Trace", "3")
	if len(h.Values("X-Trace")) != 2 {
		t.Error("Clone shares value slices with the original")
	}
	h.Del("x-trace")
	if _, ok := h["x-trace"]; ok {
		t.Error("Del left the key")
	}
	if Header(nil).Clone() != nil {
		t.Error("the clone of a nil header is not nil")
	}
}

// matchBySplit is the plain reading of the wildcard rules, to check Match
// against.
func matchBySplit(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range p {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(p) == len(s)
}

func FuzzMatch(f *testing.F) {
	for _, seed := range [][2]string{
		{"a.*", "a.b"}, {"a.>", "a.b.c"}, {">", "x"}, {"heddle.tasks.*.local", "heddle.tasks.echo.local"}, {"a.*.>", "a.b"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, subject string) {
		if ValidateSubscribeSubject(pattern) != nil || ValidatePublishSubject(subject) != nil {
			return
		}
		if got, want := Match(pattern, subject), matchBySplit(pattern, subject); got != want {
			t.Fatalf("Match(%q, %q) = %v, want %v", pattern, subject, got, want)
		}
	})
}

func TestPendingLimitsAndQueueOptionsResolve(t *testing.T) {
	o, err := NewSubscribeOptions()
	if err != nil || o.PendingMsgs != DefaultPendingMsgs || o.PendingBytes != DefaultPendingBytes || o.Queue != "" {
		t.Fatalf("defaults = %+v, %v", o, err)
	}
	o, err = NewSubscribeOptions(Queue("router"), PendingLimits(10, 0))
	if err != nil || o.Queue != "router" || o.PendingMsgs != 10 || o.PendingBytes != DefaultPendingBytes {
		t.Fatalf("options = %+v, %v", o, err)
	}
	if _, err := NewSubscribeOptions(Queue("a b")); !errors.Is(err, ErrBadQueue) {
		t.Fatalf("a queue name with a space: %v, want ErrBadQueue", err)
	}
}
