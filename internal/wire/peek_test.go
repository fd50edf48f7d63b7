package wire

import "testing"

func TestPeekStringReadsAMemberAsTheDecoderDoes(t *testing.T) {
	tests := []struct {
		name, data, want string
		ok               bool
	}{
		{"a string member", `{"task_id":"t-1","x":1}`, "t-1", true},
		{"the last of a repeated key counts", `{"task_id":"first","task_id":"last"}`, "last", true},
		{"keys match exactly, not by case", `{"TASK_ID":"upper"}`, "", false},
		{"an escaped key is the same key", `{"task\u005fid":"escaped"}`, "escaped", true},
		{"a member of another type", `{"task_id":5}`, "", false},
		{"an absent member", `{"worker_type":"w"}`, "", false},
		{"not an object", `["task_id"]`, "", false},
		{"not JSON", `{"task_id":`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := PeekString([]byte(tt.data), "task_id")
			if got != tt.want || ok != tt.ok {
				t.Errorf("PeekString(%s) = %q, %v; want %q, %v", tt.data, got, ok, tt.want, tt.ok)
			}
		})
	}
}
