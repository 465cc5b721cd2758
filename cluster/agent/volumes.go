package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Persistent volumes live under WORK_DIR/volumes/roles/<role>/<id>, outside
// any sandbox, so their data outlives the tasks (and agent restarts). A
// task whose resources include a volume sees it at the volume's
// container_path inside its sandbox.

func (a *Agent) volumeDir(role, id string) string {
	return filepath.Join(a.workDir, "volumes", "roles", role, id)
}

// linkVolumes makes the task's persistent volumes appear in its sandbox.
func (a *Agent) linkVolumes(t *task) error {
	for _, r := range t.info.Resources {
		disk := r.GetDisk()
		if disk.GetPersistence() == nil || disk.GetVolume() == nil {
			continue
		}
		id := disk.Persistence.ID
		role := r.ReservationRole()
		if err := validID("persistent volume", id); err != nil {
			return err
		}
		if role == "" || role == "*" || strings.Contains(role, "..") {
			return fmt.Errorf("persistent volume %s is not reserved for a role", id)
		}
		cp := disk.Volume.ContainerPath
		if cp == "" || filepath.IsAbs(cp) || strings.HasPrefix(filepath.Clean(cp), "..") {
			return fmt.Errorf("persistent volume %s: container_path %q must be a relative path inside the sandbox", id, cp)
		}
		dir := a.volumeDir(filepath.FromSlash(role), id)
		// Volumes on PATH disks live under the disk's root, and a MOUNT
		// disk is the volume itself, as in Mesos.
		switch src := disk.GetSource(); src.GetType() {
		case mesos.Resource_DiskInfo_Source_PATH:
			if root := src.GetPath().GetRoot(); root != "" {
				dir = filepath.Join(root, "volumes", "roles", filepath.FromSlash(role), id)
			}
		case mesos.Resource_DiskInfo_Source_MOUNT:
			if root := src.GetMount().GetRoot(); root != "" {
				dir = root
			}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("persistent volume %s: %w", id, err)
		}
		link := filepath.Join(t.sandbox, filepath.Clean(cp))
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return fmt.Errorf("persistent volume %s: %w", id, err)
		}
		if err := os.Symlink(dir, link); err != nil && !os.IsExist(err) {
			return fmt.Errorf("persistent volume %s at %s: %w", id, cp, err)
		}
		if disk.Volume.GetMode() == mesos.RO {
			// Read-only is enforced by the containerizer where it mounts;
			// with plain processes the volume stays writable, and says so.
			a.log.Warn("read-only persistent volume is writable without mount isolation", "volume", id)
		}
	}
	return nil
}
