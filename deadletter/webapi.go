package deadletter

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status, data = http.StatusInternalServerError, fmt.Appendf(nil, `{"error":%q}`, "encoding the answer: "+err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (h *handler) apiEntries(w http.ResponseWriter, r *http.Request) {
	f, err := filterOf(r)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	offset, err := intParam(r, "offset", 0, 1<<31-1)
	if err == nil {
		var limit int
		limit, err = intParam(r, "limit", h.pageSize, MaxPageSize)
		if err == nil && limit == 0 {
			err = &badRequest{"parameter limit: must be from 1 to " + strconv.Itoa(MaxPageSize)}
		}
		if err == nil {
			var page Page
			page, err = h.store.Query(r.Context(), Query{Filter: f, Offset: offset, Limit: limit})
			if err == nil {
				if page.Entries == nil {
					page.Entries = []Entry{}
				}
				writeJSON(w, http.StatusOK, page)
				return
			}
		}
	}
	writeJSONError(w, storeStatus(err), err.Error())
}

func (h *handler) apiEntry(w http.ResponseWriter, r *http.Request) {
	e, err := h.store.Lookup(r.Context(), r.PathValue("id"))
	if err != nil {
		writeJSONError(w, storeStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (h *handler) apiReplayOne(w http.ResponseWriter, r *http.Request) {
	report, status := h.replayEntry(r.Context(), r.PathValue("id"))
	writeJSON(w, status, report)
}

func (h *handler) apiReplaySelection(w http.ResponseWriter, r *http.Request) {
	f, err := filterOf(r)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	report, err := h.replayMatching(r, f)
	if err != nil && report.Matched == 0 {
		writeJSONError(w, storeStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, report)
}

func (h *handler) apiCounts(w http.ResponseWriter, r *http.Request) {
	c, err := h.store.Counts(r.Context())
	if err != nil {
		writeJSONError(w, storeStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, c)
}
