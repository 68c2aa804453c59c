// Conventional command lines for npukd and npukctl on top of absl flags:
// --help/-h and --version print to stdout and exit 0; an unknown flag or a
// bad flag value is a usage error (a message naming the flag and the help
// command, exit 2) instead of absl's exit 1.
//
// Usage (main):
//   npuk::cli::Program program{.name = "npukd", .usage = kUsage,
//                              .flag_files = {"server/main.cc"}};
//   if (std::optional<int> code = npuk::cli::HandleEarly(program, argc, argv))
//     return *code;  // --help, --version or a usage error, already printed
//   absl::ParseCommandLine(argc, argv);
#ifndef NPUK_SERVER_COMMON_CLI_H_
#define NPUK_SERVER_COMMON_CLI_H_

#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace npuk::cli {

// Exit code of a usage error (unknown flag, bad value, missing command).
inline constexpr int kUsageError = 2;

struct Program {
  std::string name;   // as the user types it: "npukd"
  std::string usage;  // what --help prints before the flags
  // The program's own flags: those defined in source files whose path ends
  // with one of these (e.g. "server/main.cc"). absl's built-in flags
  // (--flagfile, --helpfull, ...) are left out of --help.
  std::vector<std::string> flag_files;
};

// "  --name=<type>  (default: X)\n      help text\n" for each of `names`
// (flag names without dashes), in the given order; names that are not
// flags are skipped.
std::string DescribeFlags(const std::vector<std::string>& names);

// Every flag of `program.flag_files`, sorted by name, described as above.
std::string DescribeProgramFlags(const Program& program);

// The names of every flag of `program.flag_files`.
std::vector<std::string> ProgramFlagNames(const Program& program);

// Finds the first argument (before "--") that is --help, -h, -help or
// --version. Returns its name without dashes ("help", "h", "version").
std::optional<std::string> FindEarlyFlag(int argc, char** argv);

// Checks that every "-x"/"--x[=v]" argument before "--" names a known flag
// and that its value parses (with absl's own parser for the flag's type).
// Returns the message of the first problem, e.g. "unknown flag --foo".
// "--x v" (value in the next argument) is accepted for non-boolean flags.
std::optional<std::string> CheckFlags(int argc, char** argv);

// The positional arguments (before and after "--"), skipping flags and the
// values of non-boolean flags given as "--x v".
std::vector<std::string> Positionals(int argc, char** argv);

// --version: "NAME VERSION\n" to `out`, exit code 0.
// --help/-h: usage, then the program's flags, exit code 0.
// Unknown flag or bad value: a message and "run NAME --help" to `err`,
// exit code 2. nullopt when the command line may be parsed normally.
std::optional<int> HandleEarly(const Program& program, int argc, char** argv,
                               std::ostream& out, std::ostream& err);

}  // namespace npuk::cli

#endif  // NPUK_SERVER_COMMON_CLI_H_
