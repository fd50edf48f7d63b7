package deadletter

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// kindView is one reason kind in the counts at the top of the list.
type kindView struct {
	Kind     string
	Count    int
	URL      string
	Selected bool
}

type workerTypeView struct {
	Name, Label string
	Count       int
	Selected    bool
}

type rowView struct {
	ID, Reason, Kind, TaskID, WorkerType string
	Received, ReceivedISO                string
	ReplayCount                          int
	DetailURL, ReplayURL                 string
}

type listView struct {
	Counts           Counts
	Kinds            []kindView
	WorkerTypes      []workerTypeView
	Filter           Filter
	Filtered         bool
	Page             Page
	Rows             []rowView
	First, Last      int
	PrevURL, NextURL string
	FirstURL         string
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	f, err := filterOf(r)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "Bad request", err.Error())
		return
	}
	offset, err := intParam(r, "offset", 0, 1<<31-1)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "Bad request", err.Error())
		return
	}
	counts, err := h.store.Counts(r.Context())
	if err != nil {
		h.fail(w, r, storeStatus(err), "The store failed", err.Error())
		return
	}
	page, err := h.store.Query(r.Context(), Query{Filter: f, Offset: offset, Limit: h.pageSize})
	if err != nil {
		h.fail(w, r, storeStatus(err), "The store failed", err.Error())
		return
	}
	v := listView{Counts: counts, Filter: f, Filtered: f != (Filter{}), Page: page, FirstURL: h.listURL(f, 0)}
	for _, k := range ReasonKinds() {
		n := counts.ByReasonKind[k]
		if n == 0 && k != f.ReasonKind {
			continue
		}
		kf := Filter{ReasonKind: k, WorkerType: f.WorkerType}
		if k == f.ReasonKind {
			kf.ReasonKind = "" // a second click clears the kind
		}
		v.Kinds = append(v.Kinds, kindView{Kind: k, Count: n, URL: h.listURL(kf, 0), Selected: k == f.ReasonKind})
	}
	types := make([]string, 0, len(counts.ByWorkerType)+1)
	for t := range counts.ByWorkerType {
		types = append(types, t)
	}
	if f.WorkerType != "" && counts.ByWorkerType[f.WorkerType] == 0 {
		types = append(types, f.WorkerType)
	}
	slices.Sort(types)
	for _, t := range types {
		if t == "" {
			continue // entries without a worker_type: the select's "any" shows them
		}
		v.WorkerTypes = append(v.WorkerTypes, workerTypeView{Name: t, Label: t, Count: counts.ByWorkerType[t], Selected: t == f.WorkerType})
	}
	for _, e := range page.Entries {
		v.Rows = append(v.Rows, h.row(e))
	}
	if len(v.Rows) > 0 {
		v.First, v.Last = offset+1, offset+len(v.Rows)
	}
	if offset > 0 {
		v.PrevURL = h.listURL(f, max(offset-h.pageSize, 0))
	}
	if offset+len(page.Entries) < page.Total {
		v.NextURL = h.listURL(f, offset+len(page.Entries))
	}
	h.render(w, r, http.StatusOK, "list", v)
}

// listURL is the list page for f from offset on.
func (h *handler) listURL(f Filter, offset int) string {
	q := url.Values{}
	if f.ReasonKind != "" {
		q.Set("reason", f.ReasonKind)
	}
	if f.WorkerType != "" {
		q.Set("worker_type", f.WorkerType)
	}
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	return h.prefix + "/" + query(q.Encode())
}

func (h *handler) entryURL(id string) string { return h.prefix + "/entries/" + url.PathEscape(id) }

// received is when the router received the task, or when the store did
// for envelopes that do not say (Python's).
func received(e Entry) time.Time {
	if !e.DeadLetter.ReceivedAt.IsZero() {
		return e.DeadLetter.ReceivedAt
	}
	return e.StoredAt
}

func showTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// maxCellRunes bounds the text of a task_id or worker_type in the list;
// the entry's page shows it whole.
const maxCellRunes = 64

// cell shortens s to maxCellRunes runes.
func cell(s string) string {
	if utf8.RuneCountInString(s) <= maxCellRunes {
		return s
	}
	return string([]rune(s)[:maxCellRunes-1]) + "…"
}

// explanation is the reason without its kind's prefix, which the list
// shows as a badge beside it.
func explanation(reason, kind string) string {
	if kind == ReasonKindOther {
		return reason
	}
	_, rest, _ := strings.Cut(reason, ":")
	return strings.TrimSpace(rest)
}

func (h *handler) row(e Entry) rowView {
	t := received(e)
	kind := ReasonKind(e.DeadLetter.Reason)
	return rowView{
		ID: e.ID, Reason: explanation(e.DeadLetter.Reason, kind), Kind: kind,
		TaskID: cell(e.DeadLetter.TaskID), WorkerType: cell(e.DeadLetter.WorkerType),
		Received: showTime(t), ReceivedISO: t.UTC().Format(time.RFC3339Nano),
		ReplayCount: e.ReplayCount,
		DetailURL:   h.entryURL(e.ID), ReplayURL: h.entryURL(e.ID) + "/replay",
	}
}

type headerView struct{ Name, Value string }

type detailView struct {
	Entry                          Entry
	Kind                           string
	Received, Stored, LastReplayed string
	Original                       string
	IsJSON                         bool
	Headers                        []headerView
	ReplayURL                      string
}

func (h *handler) detail(w http.ResponseWriter, r *http.Request) {
	e, err := h.store.Lookup(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, storeStatus(err), "No such dead letter", err.Error())
		return
	}
	original, isJSON := prettyOriginal(e.DeadLetter.Original())
	v := detailView{
		Entry: e, Kind: ReasonKind(e.DeadLetter.Reason),
		Received: showTime(received(e)), Stored: showTime(e.StoredAt), LastReplayed: showTime(e.LastReplayedAt),
		Original: original, IsJSON: isJSON, ReplayURL: h.entryURL(e.ID) + "/replay",
	}
	names := make([]string, 0, len(e.Header))
	for k := range e.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, val := range e.Header[k] {
			v.Headers = append(v.Headers, headerView{Name: k, Value: val})
		}
	}
	h.render(w, r, http.StatusOK, "detail", v)
}

// prettyOriginal indents an original that is JSON; anything else is shown
// as text, invalid UTF-8 replaced.
func prettyOriginal(b []byte) (string, bool) {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err == nil {
		return buf.String(), true
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), false
}

type replayView struct {
	Report    ReplayReport
	Selection bool
	BackURL   string
}

func (h *handler) replayOne(w http.ResponseWriter, r *http.Request) {
	report, status := h.replayEntry(r.Context(), r.PathValue("id"))
	h.render(w, r, status, "replayed", replayView{Report: report, BackURL: h.prefix + "/"})
}

// replayEntry replays one entry and reports it as a selection of one.
func (h *handler) replayEntry(ctx context.Context, id string) (ReplayReport, int) {
	report := ReplayReport{Matched: 1, Replayed: []ReplayOutcome{}, Failed: []ReplayOutcome{}}
	o := ReplayOutcome{ID: id}
	e, err := h.store.Lookup(ctx, id)
	if err == nil {
		o.TaskID, o.WorkerType = e.DeadLetter.TaskID, e.DeadLetter.WorkerType
		err = h.store.Replay(ctx, id)
	}
	if err != nil {
		o.Error = err.Error()
		report.Failed = append(report.Failed, o)
		return report, storeStatus(err)
	}
	report.Replayed = append(report.Replayed, o)
	return report, http.StatusOK
}

func (h *handler) replaySelection(w http.ResponseWriter, r *http.Request) {
	f, err := filterOf(r)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "Bad request", err.Error())
		return
	}
	report, err := h.replayMatching(r, f)
	if err != nil && report.Matched == 0 {
		h.fail(w, r, storeStatus(err), "The replay failed", err.Error())
		return
	}
	h.render(w, r, http.StatusOK, "replayed", replayView{Report: report, Selection: true, BackURL: h.listURL(f, 0)})
}

func (h *handler) replayMatching(r *http.Request, f Filter) (ReplayReport, error) {
	report, err := ReplayMatching(r.Context(), h.store, f)
	args := []any{"reason_kind", f.ReasonKind, "worker_type", f.WorkerType, "matched", report.Matched,
		"replayed", len(report.Replayed), "failed", len(report.Failed), "left", report.Left, "remote", r.RemoteAddr}
	if err != nil {
		args = append(args, "error", err.Error())
	}
	h.log.Log(r.Context(), slog.LevelInfo, "dead_letter_web.replayed_selection", args...)
	return report, err
}
