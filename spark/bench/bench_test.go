package bench

import "testing"

func TestQuantile(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for q, want := range map[float64]float64{0.5: 5, 0.99: 10, 0.1: 1, 1: 10} {
		if got := quantile(v, q); got != want {
			t.Errorf("quantile(%v) = %v; want %v", q, got, want)
		}
	}
	if quantile(nil, 0.5) != 0 || quantile([]float64{3}, 0.99) != 3 {
		t.Error("quantile of none or one")
	}
}

func TestPatterns(t *testing.T) {
	l := "26/12/04 22:43:10 INFO CoarseGrainedSchedulerBackend$DriverEndpoint: Registered executor NettyRpcEndpointRef(spark-client://Executor) (127.0.0.1:50880) with ID 1,  ResourceProfileId 0"
	if m := registeredExe.FindStringSubmatch(l); m == nil || m[1] != "1" {
		t.Errorf("executor registration not matched: %v", m)
	}
	if m := registeredApp.FindStringSubmatch("INFO AgoraSchedulerBackend: registered spark-application-17 with agora's Spark scheduler at http://h/v1/applications"); m == nil || m[1] != "spark-application-17" {
		t.Errorf("application registration not matched: %v", m)
	}
}
