#include "util/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <syslog.h>

#include <cstdlib>

namespace tcfs {

void init_logging(const std::string& ident, LogTarget target, const std::string& level) {
  std::shared_ptr<spdlog::logger> logger;
  if (target == LogTarget::Syslog) {
    logger = spdlog::syslog_logger_mt(ident + "-syslog", ident, LOG_PID, LOG_DAEMON);
    logger->set_pattern("%v");
  } else {
    logger = spdlog::stderr_color_mt(ident + "-stderr");
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e " + ident + "[%P] %^%l%$: %v");
  }
  std::string lvl = level;
  if (const char* env = std::getenv("TCFS_LOG")) lvl = env;
  if (lvl.empty()) lvl = "warn";
  logger->set_level(spdlog::level::from_str(lvl));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

}  // namespace tcfs
