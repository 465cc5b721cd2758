package framework

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/format"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
)

func TestStoreRoundTripsAtomically(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fw, err := s.LoadFramework(now)
	if err != nil || fw.Tracker != "202601020304" || fw.NextSeq != 1 || fw.FrameworkID != "" {
		t.Fatalf("fresh state %+v, %v", fw, err)
	}
	fw.FrameworkID, fw.Incarnation, fw.NextSeq = "fw-1", 3, 7
	if err := s.SaveFramework(fw); err != nil {
		t.Fatal(err)
	}
	spec := job.Spec{Conf: conf.New()}
	spec.Conf.Set(conf.OutputDir, "/out")
	for i, id := range []string{"job_202601020304_0002", "job_202601020304_0001"} {
		rec := JobRecord{
			Plan: job.Plan{Spec: spec, Splits: []format.Split{{Path: "/in/a", Length: 10}}, NumReduces: 1},
			Info: client.JobInfo{ID: id, State: jobtracker.JobRunning, Submitted: now.Add(time.Duration(-i) * time.Minute)},
		}
		if err := s.SaveJob(rec); err != nil {
			t.Fatal(err)
		}
	}
	again, _ := OpenStore(dir)
	got, err := again.LoadFramework(time.Now())
	if err != nil || got != fw {
		t.Errorf("framework state %+v, %v; want %+v", got, err, fw)
	}
	recs, err := again.LoadJobs()
	if err != nil || len(recs) != 2 || recs[0].Info.ID != "job_202601020304_0001" || recs[1].Plan.Splits[0].Path != "/in/a" {
		t.Fatalf("jobs %+v, %v", recs, err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "jobs"))
	for _, e := range ents {
		if filepath.Ext(e.Name()) != ".json" {
			t.Errorf("left behind %s", e.Name())
		}
	}
	os.WriteFile(filepath.Join(dir, "framework.json"), []byte("{not json"), 0o644)
	if _, err := again.LoadFramework(time.Now()); err == nil {
		t.Error("a corrupt framework.json was accepted")
	}
}
