package containerizer

import (
	"fmt"
	"math"
)

// Update changes a running native container's cpu and memory limits (cpu
// shares and CFS quota, memory limit), as Mesos's containerizer update
// does for an executor whose tasks start and end. The memory limit is
// only ever raised: lowering it below what the container uses would make
// the kernel kill it, so, like Mesos's memory isolator, Update keeps a
// higher limit in place. Zero means unlimited.
func (c *nativeContainer) Update(cpus, memMB float64) error {
	if memMB > 0 {
		if u, err := c.cgUsage(); err == nil && u.MemLimitBytes > 0 {
			memMB = max(memMB, math.Ceil(float64(u.MemLimitBytes)/(1<<20)))
		}
	}
	if err := c.cg.update(c.n.limits(Spec{CPUs: cpus, MemMB: memMB})); err != nil {
		return fmt.Errorf("container %s: %w", c.id, err)
	}
	c.mu.Lock()
	c.memMB = memMB // what a memory limitation reports as requested
	c.mu.Unlock()
	return nil
}
