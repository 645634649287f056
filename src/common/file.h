// Bounded reads of files named by an operator or a client.
//
// A path that reaches the agent may name anything: a directory, a FIFO with
// no writer (open(2) would block forever), /dev/zero (endless), a sparse 2 GB
// file. read_regular_file() never blocks on the path, never reads more than
// max_bytes + 1 bytes, and refuses everything that is not a regular file with
// a message naming what it is ("is a directory, not a regular file").
#pragma once

#include <sys/types.h>

#include <string>

#include "common/fd.h"
#include "common/result.h"

namespace kagami {

// "directory", "FIFO", "character device", "block device", "socket",
// "symbolic link", "regular file" or "unknown file type".
const char* file_type_name(mode_t mode);

// Opens path for reading with O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_NOCTTY (a FIFO
// without writer cannot block), fstat()s the fd and refuses anything but a
// regular file. The fd is returned in blocking mode. `what` prefixes errors
// ("config /x: is a directory, not a regular file").
Result<Fd> open_regular_file(const std::string& path, const std::string& what);

// open_regular_file + a read of at most max_bytes + 1 bytes: a file larger
// than max_bytes (by fstat, or because it grew while read) is an error
// naming the limit; nothing beyond the limit is ever buffered.
Result<std::string> read_regular_file(const std::string& path, size_t max_bytes,
                                      const std::string& what = "file");

}  // namespace kagami
