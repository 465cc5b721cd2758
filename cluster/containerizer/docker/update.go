package docker

import (
	"context"
	"fmt"
	"net/http"
)

// updateBody is POST /containers/{id}/update's body.
type updateBody struct {
	CPUShares  int64 `json:"CpuShares,omitempty"`
	CPUPeriod  int64 `json:"CpuPeriod,omitempty"`
	CPUQuota   int64 `json:"CpuQuota,omitempty"`
	Memory     int64 `json:",omitempty"`
	MemorySwap int64 `json:",omitempty"`
}

// Update changes a running container's cpu and memory limits (`docker
// update`), as Mesos's Docker containerizer does for an executor whose
// tasks start and end. As with native containers, the memory limit is
// only ever raised: lowering it below what the container uses would get
// it killed. Zero leaves a limit as it is.
func (c *container) Update(cpus, memMB float64) error {
	select {
	case <-c.done:
		return fmt.Errorf("container %s has ended", c.name)
	default:
	}
	var hc hostConfig
	setCPUMem(&hc, cpus, memMB, !c.d.cfg.DisableCFSQuota)
	body := updateBody{CPUShares: hc.CPUShares, CPUPeriod: hc.CPUPeriod, CPUQuota: hc.CPUQuota}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if hc.Memory > 0 {
		cj, err := c.d.client.inspect(ctx, c.dockerID)
		if err != nil {
			return fmt.Errorf("container %s: %w", c.name, err)
		}
		if hc.Memory > cj.HostConfig.Memory {
			// The swap limit (memory plus swap) must stay above the
			// memory limit; Docker's default is twice the memory.
			body.Memory, body.MemorySwap = hc.Memory, 2*hc.Memory
			if cj.HostConfig.MemorySwap < 0 {
				body.MemorySwap = -1
			}
		}
	}
	if err := c.d.client.call(ctx, http.MethodPost, "/containers/"+c.dockerID+"/update", nil, body, nil); err != nil {
		return fmt.Errorf("container %s: update cpus=%g mem=%g: %w", c.name, cpus, memMB, err)
	}
	return nil
}
