package deadletter

import "context"

// ReplaySelectionLimit bounds how many entries one ReplayMatching call
// replays; the report says how many more matched (Left), to replay in
// another call.
const ReplaySelectionLimit = 10000

// ReplayReport says what ReplayMatching (or a replay from the web view)
// did: how many entries matched, which were replayed and which failed,
// and why.
type ReplayReport struct {
	// Filter is the selection replayed.
	Filter Filter `json:"filter"`
	// Matched is how many entries matched when the replay began, up to
	// ReplaySelectionLimit.
	Matched int `json:"matched"`
	// Replayed are the entries whose task was published again.
	Replayed []ReplayOutcome `json:"replayed"`
	// Failed are the entries whose replay failed, each with its error;
	// they stay in the store (unless another replay or an eviction took
	// them first: the error then says not found).
	Failed []ReplayOutcome `json:"failed"`
	// Left is how many more entries matched beyond ReplaySelectionLimit.
	Left int `json:"left"`
}

// ReplayOutcome is what became of one entry in a ReplayReport.
type ReplayOutcome struct {
	// ID is the entry's id in its store.
	ID string `json:"id"`
	// TaskID and WorkerType are the entry's task's, when they could be
	// read.
	TaskID     string `json:"task_id,omitempty"`
	WorkerType string `json:"worker_type,omitempty"`
	// Error is empty for a replayed entry.
	Error string `json:"error,omitempty"`
}

// ReplayMatching replays every entry of s that matches f, oldest first
// (the order the tasks first arrived in), at most ReplaySelectionLimit of
// them, and reports each outcome. It goes on after a failed replay; it
// returns an error only when the selection cannot be read (an invalid f,
// a failing store) or ctx ends, with the report of what was done so far.
func ReplayMatching(ctx context.Context, s Store, f Filter) (ReplayReport, error) {
	report := ReplayReport{Filter: f, Replayed: []ReplayOutcome{}, Failed: []ReplayOutcome{}}
	page, err := s.Query(ctx, Query{Filter: f, Limit: ReplaySelectionLimit})
	if err != nil {
		return report, err
	}
	report.Matched = len(page.Entries)
	report.Left = max(page.Total-len(page.Entries), 0)
	for i := len(page.Entries) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return report, err
		}
		e := page.Entries[i]
		o := ReplayOutcome{ID: e.ID, TaskID: e.DeadLetter.TaskID, WorkerType: e.DeadLetter.WorkerType}
		if err := s.Replay(ctx, e.ID); err != nil {
			o.Error = err.Error()
			report.Failed = append(report.Failed, o)
			if ctx.Err() != nil {
				return report, ctx.Err()
			}
			continue
		}
		report.Replayed = append(report.Replayed, o)
	}
	return report, nil
}
