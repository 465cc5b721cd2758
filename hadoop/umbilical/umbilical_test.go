package umbilical

import (
	"testing"

	"github.com/agora-cluster/agora/hadoop/counters"
	"github.com/agora-cluster/agora/hadoop/job"
)

func TestTaskIDCarriesTheIncarnation(t *testing.T) {
	a := job.AttemptID{Task: job.TaskID{Job: job.ID{Tracker: "202601011200", Seq: 7}, Kind: job.Reduce, Index: 3}, N: 2}
	id := TaskID(a, 5)
	if id != "attempt_202601011200_0007_r_000003_2.5" {
		t.Errorf("TaskID = %q", id)
	}
	got, inc, err := ParseTaskID(id)
	if err != nil || got != a || inc != 5 {
		t.Errorf("ParseTaskID(%q) = %v %d %v", id, got, inc, err)
	}
	for _, bad := range []string{"attempt_202601011200_0007_r_000003_2", "task-1.2", "attempt_x_0007_r_000003_2.z"} {
		if _, _, err := ParseTaskID(bad); err == nil {
			t.Errorf("ParseTaskID(%q) accepted", bad)
		}
	}
}

func TestReportRoundTrips(t *testing.T) {
	c := counters.New()
	c.Add("g", "n", 3)
	r := Report{Progress: 0.5, Status: "reading", Counters: c, MapOutput: true}
	got, err := DecodeReport(r.Encode())
	if err != nil || got.Progress != 0.5 || got.Status != "reading" || got.Counters.Get("g", "n") != 3 || !got.MapOutput {
		t.Errorf("DecodeReport = %+v, %v", got, err)
	}
	if r, err := DecodeReport(nil); err != nil || r.Progress != 0 {
		t.Errorf("empty data: %+v %v", r, err)
	}
	if _, err := DecodeReport([]byte("{")); err == nil {
		t.Error("bad data accepted")
	}
}
