// Filesystem checks shared by the manager, the agent, the identity service
// and the modules: one definition each.
#pragma once

#include <cstdint>
#include <string>

#include "common/fd.h"
#include "common/result.h"

namespace kagami::fs {

// True when path is a directory of a cgroup v2 hierarchy.
bool is_cgroup2(const std::string& path);

// Opens a cgroup v2 directory by its cgroup id (= kernfs node id, the id BPF
// reports) below the mounted hierarchy `root_fd`, with open_by_handle_at
// (needs CAP_DAC_READ_SEARCH and an exportable kernfs).
Result<Fd> open_cgroup_by_id(int root_fd, uint64_t cgroup_id);

// Whether a cgroup id still names a cgroup: 1 it exists, 0 it is gone
// (ESTALE/ENOENT: ids are never reused), -1 cannot tell (no
// CAP_DAC_READ_SEARCH, kernfs not exportable).
int cgroup_alive(int root_fd, uint64_t cgroup_id);

// The cgroup v2 id (what bpf_get_current_cgroup_id() returns) of process
// `pid`: the "0::" line of /proc/<pid>/cgroup, resolved below the mounted v2
// hierarchy `v2_root` and stat'ed (the id is the directory's inode). On a
// hybrid host, where the v1 "name=systemd" line names another path, only the
// v2 line gives the id BPF sees.
Result<uint64_t> cgroup_v2_id_of_pid(int pid, const std::string& v2_root);

// The path of that "0::" line, relative to the v2 root ("/" for the root);
// `pid` 0 means this process (/proc/self).
Result<std::string> cgroup_v2_path_of_pid(int pid);

// Checks that `path` can be read as a regular file without blocking, and
// says precisely why not: "too many levels of symbolic links", "is a
// directory", "is not a regular file (character device)", "no such file".
// `what` names the role in the message ("object", "uprobe binary").
Result<void> check_regular_file(const std::string& path, const char* what);

// Reads a whole regular file: opened O_NONBLOCK (a FIFO never blocks), then
// fstat'ed, so devices, FIFOs and directories are refused by name.
Result<std::string> read_regular_file(const std::string& path, const char* what);

}  // namespace kagami::fs
