package agent

import (
	"fmt"
	"runtime"
	"syscall"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

const (
	mib = 1 << 20
	gib = 1 << 30
)

// DetectResources parses the --resources text and fills in what it does
// not name the way Mesos does: cpus = the CPU count, mem = total memory
// minus min(1 GiB, half), disk = free space of the work directory minus
// min(5 GiB, half) (both in MB), ports = [31000-32000].
func DetectResources(text, workDir string) (mesos.Resources, error) {
	given, err := api.ParseResources(text)
	if err != nil {
		return nil, err
	}
	byName := map[string]mesos.Resources{}
	for _, r := range given {
		byName[r.Name] = append(byName[r.Name], r)
	}
	scalar := func(name string, v float64) mesos.Resource {
		return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
	}
	var out mesos.Resources
	for _, name := range []string{"cpus", "mem", "disk", "ports"} {
		if rs, ok := byName[name]; ok {
			out = append(out, rs...)
			delete(byName, name)
			continue
		}
		switch name {
		case "cpus":
			out = append(out, scalar("cpus", float64(runtime.NumCPU())))
		case "mem":
			var si syscall.Sysinfo_t
			if err := syscall.Sysinfo(&si); err != nil {
				return nil, fmt.Errorf("detect memory (give mem in --resources): %w", err)
			}
			total := uint64(si.Totalram) * uint64(si.Unit)
			out = append(out, scalar("mem", float64((total-min(gib, total/2))/mib)))
		case "disk":
			var fs syscall.Statfs_t
			if err := syscall.Statfs(workDir, &fs); err != nil {
				return nil, fmt.Errorf("detect free disk of %s (give disk in --resources): %w", workDir, err)
			}
			free := fs.Bavail * uint64(fs.Bsize)
			out = append(out, scalar("disk", float64((free-min(5*gib, free/2))/mib)))
		case "ports":
			out = append(out, mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(),
				Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: 31000, End: 32000}}}})
		}
	}
	// The rest keep the order they were given in.
	for _, r := range given {
		if _, ok := byName[r.Name]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}
