# Install rules and the ringtrain CMake package. Filled in by the C++ API issue.
