package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/event"
	"github.com/heddle-go/heddle/internal/wire"
)

// DefaultQueryTimeout bounds Query when its context has no deadline.
const DefaultQueryTimeout = 5 * time.Second

// Errors of Query. Test them with errors.Is.
var (
	// ErrNoRegistry: nothing is subscribed to heddle.SubjectWorkerRegistry;
	// the bus said so at once.
	ErrNoRegistry = errors.New("heddle: no worker registry runs")
	// ErrRefused: a registry answered with an error (a bad request, or a
	// table too large for one message).
	ErrRefused = errors.New("heddle: the worker registry refused the request")
)

// queryInbox prefixes the reply subjects of Query, one per call, in the
// inbox namespace the SDK's other request paths use.
const queryInbox = "_INBOX.heddle.registry."

// Query asks the registries on b for their table and returns the first
// answer: the instances q selects, a page at a time (Table.Total says
// how many there are; ask again with Offset to read on). It waits until
// ctx ends, or DefaultQueryTimeout when ctx has no deadline. It returns
// an error wrapping ErrNoRegistry at once when no registry runs,
// ErrRefused when the registry answered with an error, heddle.ErrConfig
// for a bad request, and one wrapping the context's error when no answer
// came in time.
func Query(ctx context.Context, b bus.Bus, q Request) (Table, error) {
	if err := q.validate(); err != nil {
		return Table{}, fmt.Errorf("%w: worker registry request: %w", heddle.ErrConfig, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultQueryTimeout)
		defer cancel()
	}
	body, err := json.Marshal(q)
	if err != nil {
		return Table{}, fmt.Errorf("heddle: worker registry request: %w", err)
	}
	inbox := queryInbox + strings.ReplaceAll(uuid.NewString(), "-", "")
	replies := make(chan []byte, 1)
	noResponders := make(chan struct{}, 1)
	sub, err := b.Subscribe(ctx, inbox, func(_ context.Context, m *bus.Msg) error {
		if bus.NoResponders(m) {
			select {
			case noResponders <- struct{}{}:
			default:
			}
			return nil
		}
		select {
		case replies <- bytes.Clone(m.Data):
		default: // a later registry's answer: the first one wins
		}
		return nil
	}, bus.LocalInterest())
	if err != nil {
		return Table{}, fmt.Errorf("heddle: worker registry request, subscribing to its reply inbox: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := b.Publish(ctx, &bus.Msg{Subject: heddle.SubjectWorkerRegistry, Reply: inbox, Data: body}); err != nil {
		return Table{}, fmt.Errorf("heddle: worker registry request to %s: %w", heddle.SubjectWorkerRegistry, err)
	}
	select {
	case data := <-replies:
		var t Table
		if err := json.Unmarshal(data, &t); err != nil {
			return Table{}, fmt.Errorf("heddle: worker registry answer on %s: %w", heddle.SubjectWorkerRegistry, err)
		}
		return t, nil
	case <-noResponders:
		return Table{}, fmt.Errorf("%w: nothing is subscribed to %s; start a registry.Registry", ErrNoRegistry, heddle.SubjectWorkerRegistry)
	case <-bus.Done(b):
		return Table{}, fmt.Errorf("heddle: worker registry request: %w", bus.Err(b))
	case <-ctx.Done():
		return Table{}, fmt.Errorf("heddle: no worker registry answered on %s in time: %w", heddle.SubjectWorkerRegistry, ctx.Err())
	}
}

// handleQuery answers one request on heddle.SubjectWorkerRegistry with
// the table, or with {"registry_id": ..., "error": ...}.
func (r *Registry) handleQuery(ctx context.Context, msg *bus.Msg) error {
	r.stats.queries.Add(1)
	if msg.Reply == "" {
		r.queryFailed("no_reply_subject", "the request has no reply subject: send it as a request (registry.Query)")
		return nil
	}
	var q Request
	var answer []byte
	err := decodeRequest(msg.Data, &q)
	if err == nil {
		var t Table
		if t, err = r.Snapshot(q); err == nil {
			answer, err = json.Marshal(t)
		}
	}
	if err != nil {
		r.queryFailed("bad_request", err.Error())
		return r.reply(ctx, msg.Reply, r.errorAnswer(err.Error()))
	}
	err = r.b.Publish(ctx, &bus.Msg{Subject: msg.Reply, Data: answer})
	if errors.Is(err, bus.ErrMaxPayload) {
		text := fmt.Sprintf("the table (%d bytes) exceeds the bus's max payload; ask for fewer workers with limit", len(answer))
		r.queryFailed("too_large", text)
		return r.reply(ctx, msg.Reply, r.errorAnswer(text))
	}
	if err != nil {
		r.queryFailed("publish", err.Error())
	}
	return nil
}

// decodeRequest reads a request body: empty, or a Request as JSON
// (unknown fields are ignored).
func decodeRequest(data []byte, q *Request) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, q); err != nil {
		return fmt.Errorf("the request is not a JSON object with worker_type, offset and limit: %w", err)
	}
	return nil
}

// errorAnswer is the answer to a request the registry cannot serve.
func (r *Registry) errorAnswer(text string) []byte {
	b := []byte(`{"registry_id":`)
	b = wire.AppendString(b, r.id)
	b = append(b, `,"error":`...)
	b = wire.AppendString(b, text)
	return append(b, '}')
}

// reply publishes an error answer; its own failure is counted once more.
func (r *Registry) reply(ctx context.Context, subject string, data []byte) error {
	if err := r.b.Publish(ctx, &bus.Msg{Subject: subject, Data: data}); err != nil {
		r.queryFailed("publish", err.Error())
	}
	return nil
}

// queryFailed reports a request that got no table.
func (r *Registry) queryFailed(reason, text string) {
	r.log.CountEvent(context.Background(), &r.stats.queryErrors, slog.LevelWarn,
		event.Event{Name: eventQueryFailed, Subject: heddle.SubjectWorkerRegistry, Reason: reason, Detail: text},
		slog.String("subject", heddle.SubjectWorkerRegistry), slog.String("reason", reason), slog.String("error", text))
}
