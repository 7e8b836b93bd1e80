// util/log.h — logging setup for every tcfs program.
//
// Contract: init_logging() installs the default spdlog logger once, before
// any other thread starts: to stderr (foreground and tools) or to syslog
// (daemonized; the systemd journal picks it up). Events are logged one line
// each, naming the operation, the path and the errno; the default level is
// "warn" so a healthy daemon is silent. TCFS_LOG=debug|info|warn|error
// overrides the level.
//
// Thread-safety: init_logging() is not thread-safe; spdlog's default logger
// (the _mt sinks) may then be used from any thread.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace tcfs {

enum class LogTarget { Stderr, Syslog };

void init_logging(const std::string& ident, LogTarget target, const std::string& level = "");

}  // namespace tcfs
