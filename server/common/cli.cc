#include "server/common/cli.h"

#include <algorithm>
#include <cstring>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "npuk_version.h"

namespace npuk::cli {
namespace {

// Longest piece of a user's argument quoted back in an error.
constexpr size_t kMaxQuoted = 64;

std::string Quoted(absl::string_view arg) {
  if (arg.size() <= kMaxQuoted) return std::string(arg);
  return absl::StrCat(arg.substr(0, kMaxQuoted), "...");
}

// `text` wrapped at 78 columns, each line indented by `indent` spaces.
std::string Wrap(absl::string_view text, size_t indent) {
  std::string out, line;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (!line.empty() && indent + line.size() + 1 + word.size() > 78) {
      absl::StrAppend(&out, std::string(indent, ' '), line, "\n");
      line.clear();
    }
    absl::StrAppend(&line, line.empty() ? "" : " ", word);
  }
  if (!line.empty())
    absl::StrAppend(&out, std::string(indent, ' '), line, "\n");
  return out;
}

bool OwnFlag(const Program& program, const absl::CommandLineFlag& flag) {
  const std::string file = flag.Filename();
  return std::any_of(
      program.flag_files.begin(), program.flag_files.end(),
      [&](const std::string& f) { return absl::EndsWith(file, f); });
}

}  // namespace

std::string DescribeFlags(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) continue;
    const bool is_bool = flag->IsOfType<bool>();
    // A help text that states its default is trusted over the raw value
    // (e.g. 0 standing for "the built-in default").
    const std::string help = flag->Help();
    const std::string def =
        absl::StrContains(help, "default") ? "" : flag->DefaultValue();
    absl::StrAppend(&out, "  --", is_bool ? "[no]" : "", name,
                    is_bool ? "" : "=VALUE",
                    def.empty() ? "" : absl::StrCat("  (default: ", def, ")"),
                    "\n", Wrap(help, 6));
  }
  return out;
}

std::vector<std::string> ProgramFlagNames(const Program& program) {
  std::vector<std::string> names;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (OwnFlag(program, *flag)) names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string DescribeProgramFlags(const Program& program) {
  return DescribeFlags(ProgramFlagNames(program));
}

std::optional<std::string> FindEarlyFlag(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view a = argv[i];
    if (a == "--") break;
    for (const char* name : {"help", "h", "version"}) {
      if (a == absl::StrCat("-", name) || a == absl::StrCat("--", name)) {
        return std::string(name);
      }
    }
  }
  return std::nullopt;
}

std::optional<std::string> CheckFlags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (a == "--") break;
    if (a.size() < 2 || a[0] != '-') continue;  // a positional argument
    const absl::string_view arg = a;
    a.remove_prefix(a[1] == '-' ? 2 : 1);
    const size_t eq = a.find('=');
    const std::string name(a.substr(0, eq));
    const bool has_value = eq != absl::string_view::npos;
    std::string value(has_value ? a.substr(eq + 1) : "");
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr && absl::StartsWith(name, "no") && !has_value) {
      flag = absl::FindCommandLineFlag(name.substr(2));
      if (flag != nullptr && flag->IsOfType<bool>()) continue;  // --nodeep
      flag = nullptr;
    }
    if (flag == nullptr) {
      return absl::StrCat("unknown flag '", Quoted(arg), "'");
    }
    if (flag->IsOfType<bool>()) {
      if (!has_value) continue;
    } else if (!has_value) {
      if (i + 1 >= argc) {
        return absl::StrCat("flag '", Quoted(arg), "' needs a value: --", name,
                            "=VALUE");
      }
      value = argv[++i];
    }
    // Parsing twice is harmless: absl::ParseCommandLine sets it again.
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::StrCat("bad value '", Quoted(value), "' for --", name, ": ",
                          error);
    }
  }
  return std::nullopt;
}

std::vector<std::string> Positionals(int argc, char** argv) {
  std::vector<std::string> out;
  bool only_positionals = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (only_positionals || a.size() < 2 || a[0] != '-') {
      out.emplace_back(a);
      continue;
    }
    if (a == "--") {
      only_positionals = true;
      continue;
    }
    a.remove_prefix(a[1] == '-' ? 2 : 1);
    if (a.find('=') != absl::string_view::npos) continue;
    const absl::CommandLineFlag* flag =
        absl::FindCommandLineFlag(std::string(a));
    if (flag != nullptr && !flag->IsOfType<bool>()) ++i;  // "--x v"
  }
  return out;
}

std::optional<int> HandleEarly(const Program& program, int argc, char** argv,
                               std::ostream& out, std::ostream& err) {
  if (std::optional<std::string> early = FindEarlyFlag(argc, argv)) {
    if (*early == "version") {
      out << program.name << " " << kVersion << "\n";
    } else {
      out << program.usage;
      if (!program.usage.empty() && program.usage.back() != '\n') out << "\n";
      out << "\nflags:\n" << DescribeProgramFlags(program);
    }
    return 0;
  }
  if (std::optional<std::string> problem = CheckFlags(argc, argv)) {
    err << program.name << ": " << *problem << "; run `" << program.name
        << " --help` for the flags\n";
    return kUsageError;
  }
  return std::nullopt;
}

}  // namespace npuk::cli
