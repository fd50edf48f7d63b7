package natsbus_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/contracttest"
	"github.com/heddle-go/heddle/contracttest/natstest"
	"github.com/heddle-go/heddle/natsbus"
)

// collect subscribes to subject and returns the messages it delivers.
func collect(t *testing.T, b *natsbus.Bus, subject string) (bus.Subscription, <-chan *bus.Msg) {
	t.Helper()
	got := make(chan *bus.Msg, 16)
	sub, err := b.Subscribe(testContext(t), subject, func(_ context.Context, m *bus.Msg) error {
		got <- m
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sub, got
}

func publish(t *testing.T, b *natsbus.Bus, subject, data string) {
	t.Helper()
	if err := b.Publish(testContext(t), &bus.Msg{Subject: subject, Data: []byte(data)}); err != nil {
		t.Fatal(err)
	}
}

func flush(t *testing.T, buses ...*natsbus.Bus) {
	t.Helper()
	for _, b := range buses {
		if err := b.Flush(testContext(t)); err != nil {
			t.Fatal(err)
		}
	}
}

// observe subscribes a plain NATS connection to every subject, to see what
// goes over the wire. The server must be the test's own.
func observe(t *testing.T, url string) *nats.Subscription {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync(">")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sub
}

// The server queues messages for one connection in the order it routes
// them, and has routed everything a connection published once that
// connection's Flush returns. So when a bus's own sentinel, published after
// every other bus flushed, arrives, any message that leaked into its
// subscription from another namespace would have arrived before it.

func TestSubjectPrefixesKeepBusesOnOneServerApart(t *testing.T) {
	url := natstest.StartServer(t, nil).ClientURL()
	wire := observe(t, url)
	const subject = "natsbus.prefix.task"
	namespaces := []string{"", "ns-a.", "ns-b.deep."}
	buses := make([]*natsbus.Bus, len(namespaces))
	subs := make([]bus.Subscription, len(namespaces))
	got := make([]<-chan *bus.Msg, len(namespaces))
	for i, prefix := range namespaces {
		buses[i] = connect(t, url, natsbus.WithSubjectPrefix(prefix))
		subs[i], got[i] = collect(t, buses[i], subject)
	}
	for i, prefix := range namespaces {
		publish(t, buses[i], subject, "from "+prefix)
	}
	flush(t, buses...)
	for i := range namespaces {
		publish(t, buses[i], subject, "end")
	}

	for i, prefix := range namespaces {
		if s := subs[i].Subject(); s != subject {
			t.Errorf("namespace %q: Subscription.Subject() = %q, want the logical %q", prefix, s, subject)
		}
		for _, want := range []string{"from " + prefix, "end"} {
			m := recv(t, got[i], "a message in namespace "+prefix)
			if string(m.Data) != want || m.Subject != subject {
				t.Fatalf("namespace %q received %q on %q, want %q on the logical subject %q", prefix, m.Data, m.Subject, want, subject)
			}
		}
	}

	var wireSubjects []string
	for range 2 * len(namespaces) {
		m, err := wire.NextMsg(waitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		wireSubjects = append(wireSubjects, m.Subject)
	}
	slices.Sort(wireSubjects)
	want := []string{
		"natsbus.prefix.task", "natsbus.prefix.task",
		"ns-a.natsbus.prefix.task", "ns-a.natsbus.prefix.task",
		"ns-b.deep.natsbus.prefix.task", "ns-b.deep.natsbus.prefix.task",
	}
	if !slices.Equal(wireSubjects, want) {
		t.Fatalf("subjects on the wire: %q, want %q", wireSubjects, want)
	}
}

func TestWildcardsMatchWithinTheirNamespaceOnly(t *testing.T) {
	url := natstest.StartServer(t, nil).ClientURL()
	mine := connect(t, url, natsbus.WithSubjectPrefix("ns-a."))
	other := connect(t, url, natsbus.WithSubjectPrefix("ns-b."))
	plain := connect(t, url)
	_, one := collect(t, mine, "natsbus.*.task")
	_, all := collect(t, mine, ">")

	publish(t, other, "natsbus.w.task", "other namespace")
	publish(t, plain, "natsbus.w.task", "no namespace")
	flush(t, other, plain)
	publish(t, mine, "natsbus.w.task", "one")
	publish(t, mine, "natsbus.x.y.z", "deep")
	publish(t, mine, "natsbus.end.task", "end")

	for _, want := range []struct{ subject, data string }{
		{"natsbus.w.task", "one"},
		{"natsbus.end.task", "end"},
	} {
		if m := recv(t, one, `a message for "natsbus.*.task"`); m.Subject != want.subject || string(m.Data) != want.data {
			t.Fatalf(`"natsbus.*.task" received %q on %q, want %q on %q`, m.Data, m.Subject, want.data, want.subject)
		}
	}
	for _, want := range []struct{ subject, data string }{
		{"natsbus.w.task", "one"},
		{"natsbus.x.y.z", "deep"},
		{"natsbus.end.task", "end"},
	} {
		if m := recv(t, all, `a message for ">"`); m.Subject != want.subject || string(m.Data) != want.data {
			t.Fatalf(`">" received %q on %q, want %q on %q`, m.Data, m.Subject, want.data, want.subject)
		}
	}
}

func TestQueueGroupsOfOneNameInTwoNamespacesAreTwoGroups(t *testing.T) {
	url := natstest.StartServer(t, nil).ClientURL()
	a := connect(t, url, natsbus.WithSubjectPrefix("ns-a."))
	b := connect(t, url, natsbus.WithSubjectPrefix("ns-b."))
	got := make(chan string, 4)
	for name, c := range map[string]*natsbus.Bus{"a": a, "b": b} {
		if _, err := c.Subscribe(testContext(t), "natsbus.queue", func(_ context.Context, m *bus.Msg) error {
			got <- name + ":" + string(m.Data)
			return nil
		}, bus.Queue("workers")); err != nil {
			t.Fatal(err)
		}
	}
	publish(t, a, "natsbus.queue", "1")
	publish(t, b, "natsbus.queue", "2")
	received := []string{recv(t, got, "the message in namespace a"), recv(t, got, "the message in namespace b")}
	slices.Sort(received)
	if want := []string{"a:1", "b:2"}; !slices.Equal(received, want) {
		t.Fatalf("received %q, want %q: each namespace's group gets its own message", received, want)
	}
}

func TestASubjectPrefixMustBeValidTokensEndingInADot(t *testing.T) {
	url := natstest.StartServer(t, nil).ClientURL()
	for _, tc := range []struct {
		name, prefix, why string
	}{
		{"a prefix without the final dot is refused", "heddle", `the prefix must end with '.'`},
		{"a lookalike of '.' does not end a prefix", "heddle\uff0e", `the prefix must end with '.'`},
		{"a lone dot is an empty token", ".", `bus: bad subject "": empty`},
		{"a doubled final dot is an empty token", "a..", `bus: bad subject "a.": empty token at byte 2`},
		{"a leading dot is an empty token", ".a.", `bus: bad subject ".a": empty token at byte 0`},
		{"white space is refused", "a b.", `bus: bad subject "a b": white space U+0020 at byte 1`},
		{"an invisible format character is refused", "a\u200b.", `bus: bad subject "a\u200b": invisible format character U+200B at byte 1`},
		{"'*' is refused", "*.", `bus: bad subject "*": wildcard "*" at byte 0 is not allowed in a publish subject`},
		{"'>' is refused", "a.>.", `bus: bad subject "a.>": wildcard ">" at byte 2 is not allowed in a publish subject`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(how string, err error) {
				t.Helper()
				if !errors.Is(err, bus.ErrBadSubject) || !strings.Contains(err.Error(), `WithSubjectPrefix(`) || !strings.HasSuffix(err.Error(), tc.why) {
					t.Errorf("%s with prefix %q = %v, want an error naming WithSubjectPrefix, ending in %s, wrapping bus.ErrBadSubject", how, tc.prefix, err, tc.why)
				}
			}
			// Nothing listens there: the prefix is refused before dialling.
			b, err := natsbus.Connect(closedPortURL(t), natsbus.WithSubjectPrefix(tc.prefix))
			if err == nil {
				b.Close()
			}
			check("Connect", err)

			nc, err := nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			b, err = natsbus.New(nc, natsbus.WithSubjectPrefix(tc.prefix))
			if err == nil {
				b.Close()
			}
			check("New", err)
		})
	}
	for _, prefix := range []string{"", "t0123456789abcdef.", "tenant-a.env.", "résumé."} {
		b, err := natsbus.Connect(url, natsbus.WithSubjectPrefix(prefix))
		if err != nil {
			t.Errorf("Connect with prefix %q: %v", prefix, err)
			continue
		}
		b.Close()
	}
}

func TestErrorsAndReportsNameTheLogicalSubject(t *testing.T) {
	url := natstest.StartServer(t, nil).ClientURL()
	ctx := testContext(t)
	errs := make(chan string, 1)
	b := connect(t, url, natsbus.WithSubjectPrefix("ns-a."), natsbus.WithErrorHandler(func(subject string, err error) {
		errs <- subject + ": " + err.Error()
	}))

	err := b.Publish(ctx, &bus.Msg{Subject: "natsbus.a b"})
	if want := `natsbus: publish: bus: bad subject "natsbus.a b": white space U+0020 at byte 9`; err == nil || err.Error() != want {
		t.Errorf("Publish = %v, want %s", err, want)
	}
	_, err = b.Subscribe(ctx, "natsbus.>.x", func(context.Context, *bus.Msg) error { return nil })
	if want := `natsbus: subscribe: bus: bad subject "natsbus.>.x": wildcard ">" at byte 8 is not the last token`; err == nil || err.Error() != want {
		t.Errorf("Subscribe = %v, want %s", err, want)
	}

	if _, err := b.Subscribe(ctx, "natsbus.fails", func(context.Context, *bus.Msg) error {
		return errors.New("refused")
	}); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "natsbus.fails", "x")
	if got, want := recv(t, errs, "the handler error"), `natsbus.fails: natsbus: handler for "natsbus.fails": refused`; got != want {
		t.Fatalf("error handler got %q, want %q", got, want)
	}
}

func TestSlowConsumersAreReportedUnderTheLogicalSubject(t *testing.T) {
	url := natstest.StartServer(t, nil).ClientURL()
	ctx := testContext(t)
	logs := newLogRecorder()
	errs := make(chan string, 16)
	b := connect(t, url, natsbus.WithSubjectPrefix("ns-a."), natsbus.WithLogger(logs.logger()),
		natsbus.WithErrorHandler(func(subject string, err error) { errs <- subject }))

	started := make(chan struct{}, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before Close, which waits for the handler
	if _, err := b.Subscribe(ctx, "natsbus.slow", func(context.Context, *bus.Msg) error {
		select {
		case started <- struct{}{}:
		default:
		}
		<-release
		return nil
	}, bus.PendingLimits(1, bus.DefaultPendingBytes)); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "natsbus.slow", "x")
	recv(t, started, "the handler to start")
	publish(t, b, "natsbus.slow", "dropped")
	flush(t, b)

	if subject := recv(t, errs, "the slow-consumer report"); subject != "natsbus.slow" {
		t.Fatalf("slow consumer reported for %q, want the logical subject", subject)
	}
	if rec := logs.wait(t, "bus.slow_consumer"); rec["subject"] != "natsbus.slow" {
		t.Fatalf("bus.slow_consumer logged with subject %q, want the logical subject", rec["subject"])
	}
}

// TestSubjectsTheServerWouldTakeAreCheckedByTheBusRule shows that natsbus
// applies package bus's rule, which is stricter than the NATS server's,
// to every publish subject, subscribe subject and queue group name, and
// sends nothing when it fails.
func TestSubjectsTheServerWouldTakeAreCheckedByTheBusRule(t *testing.T) {
	url := natstest.StartServer(t, nil).ClientURL()
	ctx := testContext(t)
	wire := observe(t, url)
	b := connect(t, url)
	nop := func(context.Context, *bus.Msg) error { return nil }

	for _, subject := range []string{"natsbus.a\u00a0b", "natsbus.\u200b", "natsbus.a\uff0eb", "natsbus.\x85", "natsbus.\xff"} {
		if err := b.Publish(ctx, &bus.Msg{Subject: subject}); !errors.Is(err, bus.ErrBadSubject) {
			t.Errorf("Publish(%q) = %v, want bus.ErrBadSubject", subject, err)
		}
		if _, err := b.Subscribe(ctx, subject, nop); !errors.Is(err, bus.ErrBadSubject) {
			t.Errorf("Subscribe(%q) = %v, want bus.ErrBadSubject", subject, err)
		}
	}
	for _, queue := range []string{"q\u3000", "q.*", "q..r", "q\u2028"} {
		if _, err := b.Subscribe(ctx, "natsbus.queue", nop, bus.Queue(queue)); !errors.Is(err, bus.ErrBadQueue) {
			t.Errorf("Subscribe with queue %q = %v, want bus.ErrBadQueue", queue, err)
		}
	}
	publish(t, b, "natsbus.sentinel", "")
	m, err := wire.NextMsg(waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "natsbus.sentinel" {
		t.Fatalf("the server received %q before the sentinel", m.Subject)
	}
}

// TestBusInANamespace runs the Bus conformance suite against buses that
// share a subject prefix: the namespace is invisible to code using the
// bus.
func TestBusInANamespace(t *testing.T) {
	url := natstest.RunServer(t)
	contracttest.TestBus(t, func(t *testing.T, errs bus.ErrorHandler) bus.Bus {
		b, err := natsbus.Connect(url, natsbus.WithErrorHandler(errs), natsbus.WithSubjectPrefix("natsbus-ns.conformance."))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	})
}
