package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/containerizer"
)

// Persistent volumes live under WORK_DIR/volumes/roles/<role>/<id>, outside
// any sandbox, so their data outlives the tasks (and agent restarts). A
// task whose resources include a volume sees it at the volume's
// container_path inside its sandbox: a link to the volume's directory,
// which the containerizer keeps reachable from the task's own /tmp
// (containerizer.Spec.Volumes).

func (a *Agent) volumeDir(role, id string) string {
	return filepath.Join(a.workDir, "volumes", "roles", role, id)
}

// taskVolume is one persistent volume of a task: where its data is on
// the agent and where the task sees it (link, in its sandbox).
type taskVolume struct {
	id, dir, link string
	path          string // container_path, as the task gave it
	readOnly      bool
}

// volumes lists the task's persistent volumes, refusing any whose ID,
// role or container path would lead outside its place.
func (a *Agent) volumes(t *task) ([]taskVolume, error) {
	var out []taskVolume
	for _, r := range t.info.Resources {
		disk := r.GetDisk()
		if disk.GetPersistence() == nil || disk.GetVolume() == nil {
			continue
		}
		id := disk.Persistence.ID
		role := r.ReservationRole()
		if err := validID("persistent volume", id); err != nil {
			return nil, err
		}
		if role == "" || role == "*" || strings.Contains(role, "..") {
			return nil, fmt.Errorf("persistent volume %s is not reserved for a role", id)
		}
		cp := disk.Volume.ContainerPath
		if cp == "" || filepath.IsAbs(cp) || strings.HasPrefix(filepath.Clean(cp), "..") {
			return nil, fmt.Errorf("persistent volume %s: container_path %q must be a relative path inside the sandbox", id, cp)
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
		out = append(out, taskVolume{id: id, dir: dir, link: filepath.Join(t.sandbox, filepath.Clean(cp)), path: cp,
			readOnly: disk.Volume.GetMode() == mesos.RO})
	}
	return out, nil
}

// volumeDirs are the directories of the task's persistent volumes, which
// its container must reach (containerizer.Spec.Volumes).
func (a *Agent) volumeDirs(t *task) []containerizer.Volume {
	vs, err := a.volumes(t)
	if err != nil { // refused by linkVolumes before any launch
		return nil
	}
	var dirs []containerizer.Volume
	for _, v := range vs {
		dirs = append(dirs, containerizer.Volume{Dir: v.dir, ReadOnly: v.readOnly})
	}
	return dirs
}

// mountsReadOnly reports whether t's container mounts its read-only
// volumes read-only: the native containerizer does; plain processes, and
// Docker containers (which reach the volume through the sandbox's link,
// if at all), do not.
func (a *Agent) mountsReadOnly(t *task) bool {
	_, native := a.cfg.Containerizer.(*containerizer.Native)
	return native && !isDockerTask(&t.info)
}

// linkVolumes makes the task's persistent volumes appear in its sandbox.
func (a *Agent) linkVolumes(t *task) error {
	vs, err := a.volumes(t)
	if err != nil {
		return err
	}
	for _, v := range vs {
		if err := os.MkdirAll(v.dir, 0o755); err != nil {
			return fmt.Errorf("persistent volume %s: %w", v.id, err)
		}
		if err := a.closeVolume(t, v); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(v.link), 0o755); err != nil {
			return fmt.Errorf("persistent volume %s: %w", v.id, err)
		}
		if err := os.Symlink(v.dir, v.link); err != nil && !os.IsExist(err) {
			return fmt.Errorf("persistent volume %s at %s: %w", v.id, v.path, err)
		}
		if v.readOnly && !a.mountsReadOnly(t) {
			// The native containerizer mounts the volume read-only in the
			// task's mount namespace; without it the volume stays
			// writable, and says so.
			a.log.Warn("read-only persistent volume is writable without mount isolation", "volume", v.id)
		}
	}
	return nil
}

// closeVolume hands a volume's directory to the user the task runs as
// under --switch_user, mode 0700, as its sandbox (closeSandbox): other
// users on the host cannot list another framework's volume. Only the
// directory itself changes: what the volume holds keeps its owners and
// modes, so data written by earlier tasks stays as it was. A volume that
// already belongs to another user (an earlier task's, run as someone
// else) is left to that user: handing it over would lock the earlier
// user out of its own data and let the new one rename or delete it; the
// task then finds the volume as the earlier user left it. A Docker task's
// volume keeps its modes, as its sandbox does.
func (a *Agent) closeVolume(t *task, v taskVolume) error {
	if isDockerTask(&t.info) {
		return nil
	}
	userName := a.taskUser(t)
	if owner, ok := ownerOf(v.dir); ok && owner != 0 {
		if uid, known := userUID(userName); !known || uid != int(owner) {
			a.log.Warn("persistent volume belongs to another user: left as it is", "volume", v.id, "owner_uid", owner, "user", userName)
			return nil
		}
	}
	if err := closeSandbox(v.dir, userName); err != nil { // sandbox_owner.go
		return fmt.Errorf("persistent volume %s: %w", v.id, err)
	}
	return nil
}

// ownerOf is the uid that owns path (not following a link).
func ownerOf(path string) (uint32, bool) {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return 0, false
	}
	return st.Uid, true
}
