# `cmake --install` rules and the CMake package, so that another project can do
#
#   find_package(ringtrain REQUIRED)
#   target_link_libraries(app PRIVATE ringtrain::ringtrain)
#
# Layout under the prefix:
#   bin/ringtrain                               the command-line tool
#   lib/libringtrain.a                          the library
#   include/ringtrain/{core,trainer,collectives,models,data}/**/*.h
#                                               headers, included as "trainer/trainer.h"
#   lib/cmake/ringtrain/ringtrainConfig.cmake   the package (+ Targets, ConfigVersion)
#
# The package re-finds ringtrain's public dependencies (Torch, MPI, yaml-cpp, ZLIB, Threads)
# with find_dependency, so the consumer needs the same ones installed, found the same way
# (e.g. Torch_DIR or CMAKE_PREFIX_PATH for a LibTorch outside the system paths).

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(RINGTRAIN_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/ringtrain)

install(TARGETS ringtrain EXPORT ringtrainTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS ringtrain_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Headers keep their folder, so "trainer/trainer.h" resolves the same as in the source tree
# (the target's INSTALL_INTERFACE include directory is include/ringtrain). The NCCL headers
# include CUDA's and are installed only when the backend is built.
set(_ringtrain_header_excludes)
if(NOT RINGTRAIN_WITH_NCCL)
  set(_ringtrain_header_excludes PATTERN "nccl_*" EXCLUDE PATTERN "cuda_*" EXCLUDE)
endif()
foreach(_dir core trainer collectives models data)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${_dir}/
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ringtrain/${_dir}
    FILES_MATCHING PATTERN "*.h" ${_ringtrain_header_excludes})
endforeach()

install(EXPORT ringtrainTargets
  NAMESPACE ringtrain::
  DESTINATION ${RINGTRAIN_INSTALL_CMAKEDIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/ringtrainConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ringtrainConfig.cmake
  INSTALL_DESTINATION ${RINGTRAIN_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ringtrainConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ringtrainConfig.cmake
              ${PROJECT_BINARY_DIR}/ringtrainConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/torch_wheel_cuda.cmake
  DESTINATION ${RINGTRAIN_INSTALL_CMAKEDIR})
