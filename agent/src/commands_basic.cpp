// Commands that need no running agent: version, config validate, config show.
#include <mosquitto.h>
#include <openssl/crypto.h>
#include <sqlite3.h>

#include <boost/beast/version.hpp>
#include <boost/version.hpp>
#include <iostream>

#include "build_info.h"
#include "command.h"
#include "psa/agent/config.h"
#include "psa/store/json.h"
#include "psa/store/os/utf8_path.h"

namespace psa::agent {
namespace {

int printIssues(CommandContext& ctx, const std::filesystem::path& file, const ConfigLoad& load) {
  if (!load.fatal.empty() && load.issues.empty()) {
    ctx.err << "FAIL  " << file.string() << ": " << load.fatal << "\n";
    return kExitFailure;
  }
  for (const auto& issue : load.issues) {
    ctx.err << file.string() << ":" << issue.line << ":" << issue.column << ": "
            << (issue.path.empty() ? "" : issue.path + ": ") << issue.message << "\n";
  }
  ctx.err << "FAIL  " << file.string() << ": " << load.issues.size() << " problem"
          << (load.issues.size() == 1 ? "" : "s") << "\n";
  return kExitFailure;
}

}  // namespace

json::Value versionInfo() {
  int major = 0, minor = 0, rev = 0;
  mosquitto_lib_version(&major, &minor, &rev);
  json::Value libs = json::Value::object();
  libs.set("openssl", json::Value::string(OpenSSL_version(OPENSSL_VERSION)));
  libs.set("sqlite", json::Value::string(sqlite3_libversion()));
  libs.set("libmosquitto", json::Value::string(std::to_string(major) + "." + std::to_string(minor) +
                                               "." + std::to_string(rev)));
  libs.set("boost", json::Value::string(std::to_string(BOOST_VERSION / 100000) + "." +
                                        std::to_string(BOOST_VERSION / 100 % 1000) + "." +
                                        std::to_string(BOOST_VERSION % 100)));
  // The HTTP transport of the API adapters (Boost.Beast's own version, e.g. 300 in Boost 1.74).
  libs.set("beast", json::Value::string(std::to_string(BOOST_BEAST_VERSION)));
  json::Value v = json::Value::object();
  v.set("version", json::Value::string(kAgentVersion));
  v.set("build", json::Value::string(kBuildId));
  v.set("compiler", json::Value::string(__VERSION__));
  v.set("libraries", std::move(libs));
  return v;
}

void addBasicCommands(CommandTable& table) {
  table.add(Command{
      "version", "", "print the agent's version, build and library versions", "",
      [](po::options_description& o, po::positional_options_description&) {
        o.add_options()("json", "machine-readable output");
      },
      [](const po::variables_map& vm, CommandContext& ctx) {
        json::Value v = versionInfo();
        if (vm.count("json")) {
          ctx.out << json::serialize(v, true) << "\n";
          return kExitOk;
        }
        ctx.out << "pms-agent " << v.getString("version") << " (build " << v.getString("build")
                << ", " << v.getString("compiler") << ")\n";
        for (const auto& [name, ver] : v.find("libraries")->members()) {
          ctx.out << "  " << name << " " << ver.asString() << "\n";
        }
        return kExitOk;
      }});

  table.add(Command{
      "config validate", "[FILE]",
      "validate a config file; every problem is reported with its JSON path and line",
      "FILE defaults to the --config file. Exit 0 if valid, 1 if not.",
      [](po::options_description& o, po::positional_options_description& p) {
        o.add_options()("file", po::value<std::string>(), "config file to validate");
        p.add("file", 1);
      },
      [](const po::variables_map& vm, CommandContext& ctx) {
        adapters::SourceRegistry registry;
        adapters::registerBuiltinSources(registry);
        std::filesystem::path file =
            vm.count("file") ? os::pathFromUtf8(vm["file"].as<std::string>()) : ctx.config_path;
        ConfigLoad load = loadConfig(file, registry);
        if (!load.config) {
          return printIssues(ctx, file, load);
        }
        ctx.out << "OK    " << file.string() << " valid (" << load.config->adapters.size()
                << " adapter" << (load.config->adapters.size() == 1 ? "" : "s") << ")\n";
        return kExitOk;
      }});
}

int showConfigFromFile(CommandContext& ctx) {
  adapters::SourceRegistry registry;
  adapters::registerBuiltinSources(registry);
  ConfigLoad load = loadConfig(ctx.config_path, registry);
  if (!load.config) {
    return printIssues(ctx, ctx.config_path, load);
  }
  ctx.out << json::serialize(maskedConfig(*load.config, registry), true) << "\n";
  return kExitOk;
}

}  // namespace psa::agent
