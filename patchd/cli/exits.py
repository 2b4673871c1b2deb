"""Exit codes of the contract: 0 success, 1 some targets failed, 2 usage or input error."""

EXIT_OK = 0
EXIT_TARGETS_FAILED = 1
EXIT_INPUT = 2
