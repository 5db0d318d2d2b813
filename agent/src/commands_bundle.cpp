// `pms-agent bundle --out FILE`: the support bundle (see bundle.h).

#include "bundle.h"
#include "cli_support.h"
#include "psa/store/os/utf8_path.h"

namespace psa::agent {

void addBundleCommand(CommandTable& table) {
  table.add(Command{
      "bundle", "--out FILE",
      "write a support bundle (tar.gz): versions, masked config, status, checks, logs; no PHI",
      "Works whether or not the agent runs (then status, queue and audit come from its files).\n"
      "The file is created with mode 0600.",
      [](po::options_description& o, po::positional_options_description&) {
        o.add_options()("out,o", po::value<std::string>(), "the .tar.gz file to write")(
            "lines", po::value<int>()->default_value(2000), "recent log lines to include (1-2000)")(
            "no-journal", "do not add journalctl output");
      },
      [](const po::variables_map& vm, CommandContext& ctx) {
        if (!vm.count("out")) {
          ctx.err << "pms-agent bundle: missing --out FILE (e.g. --out /tmp/pms-agent-bundle.tar.gz)\n";
          return kExitUsage;
        }
        const int lines = vm["lines"].as<int>();
        if (lines < 1 || lines > 2000) {
          ctx.err << "pms-agent bundle: --lines must be from 1 to 2000\n";
          return kExitUsage;
        }
        const std::filesystem::path out = os::pathFromUtf8(vm["out"].as<std::string>());
        std::error_code ec;
        if (std::filesystem::is_directory(out, ec)) {
          ctx.err << "pms-agent bundle: " << out.string() << " is a directory; give a file name\n";
          return kExitUsage;
        }
        BundleOptions o;
        o.log_lines = static_cast<size_t>(lines);
        o.journal = vm.count("no-journal") == 0;
        std::vector<std::string> notes;
        auto files = collectBundle(ctx, o, notes);
        if (Status st = writeBundle(out, files); !st) {
          ctx.err << "pms-agent bundle: " << st.error().message << "\n";
          return kExitFailure;
        }
        for (const auto& n : notes) {
          ctx.err << "note: " << n << "\n";
        }
        const uintmax_t size = std::filesystem::file_size(out, ec);
        ctx.out << checkLine("OK", "bundle",
                             out.string() + " (" +
                                 humanBytes(ec ? 0 : static_cast<uint64_t>(size)) + ", " +
                                 std::to_string(files.size()) +
                                 " files) ▸ send it to support; it holds no patient data")
                << "\n";
        return kExitOk;
      }});
}

}  // namespace psa::agent
