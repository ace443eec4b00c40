# Optional NCCL backend (collectives/nccl_*.cpp, backend name "nccl").
#
# RINGTRAIN_NCCL (declared in CMakeLists.txt):
#   AUTO  enable when the CUDA toolkit and NCCL are found, else build without it (default)
#   ON    enable, and fail the configure step when either is missing
#   OFF   never enable
#
# The backend uses only the CUDA runtime and NCCL C APIs on raw device pointers, so it
# compiles and links against a CPU-only LibTorch too; it then refuses to start at run time
# (see collectives/gpu_backend.cpp). Hints: CUDAToolkit_ROOT for the toolkit, NCCL_ROOT for
# NCCL when it is not inside the toolkit (e.g. a pip install's .../site-packages/nvidia/nccl).
#
# Results: RINGTRAIN_WITH_NCCL (ON/OFF) in the cache, and the public compile definition
# RINGTRAIN_WITH_NCCL=1 on the ringtrain target when enabled.

string(TOUPPER "${RINGTRAIN_NCCL}" _ringtrain_nccl_mode)
if(NOT _ringtrain_nccl_mode MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "RINGTRAIN_NCCL must be AUTO, ON or OFF, not '${RINGTRAIN_NCCL}'")
endif()
set_property(CACHE RINGTRAIN_NCCL PROPERTY STRINGS AUTO ON OFF)

set(_ringtrain_nccl_enabled OFF)
set(_ringtrain_nccl_why "")
if(NOT _ringtrain_nccl_mode STREQUAL "OFF")
  find_package(CUDAToolkit QUIET)
  if(NOT CUDAToolkit_FOUND)
    set(_ringtrain_nccl_why "the CUDA toolkit was not found (set CUDAToolkit_ROOT)")
  else()
    # A pip-installed CUDA LibTorch loads the NCCL of its nvidia-nccl wheel (site-packages/
    # nvidia/nccl): link that one, so that one libnccl.so.2 serves LibTorch and ringtrain.
    set(_ringtrain_wheel_nccl "${TORCH_INSTALL_PREFIX}/../nvidia/nccl")
    if(NOT EXISTS "${_ringtrain_wheel_nccl}/include/nccl.h")
      set(_ringtrain_wheel_nccl "")
    endif()
    set(_ringtrain_nccl_hints ${NCCL_ROOT} $ENV{NCCL_ROOT} ${_ringtrain_wheel_nccl}
                              ${CUDAToolkit_LIBRARY_ROOT} ${CUDAToolkit_TARGET_DIR})
    find_path(NCCL_INCLUDE_DIR nccl.h
      HINTS ${_ringtrain_nccl_hints} ${CUDAToolkit_INCLUDE_DIRS}
      PATH_SUFFIXES include)
    # pip's nvidia-nccl wheels ship only the versioned libnccl.so.2.
    find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 NAMES_PER_DIR
      HINTS ${_ringtrain_nccl_hints} ${CUDAToolkit_LIBRARY_DIR}
      PATH_SUFFIXES lib lib64)
    if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
      set(_ringtrain_nccl_enabled ON)
    else()
      set(_ringtrain_nccl_why "NCCL (nccl.h, libnccl.so) was not found (set NCCL_ROOT)")
    endif()
  endif()
endif()

if(_ringtrain_nccl_mode STREQUAL "ON" AND NOT _ringtrain_nccl_enabled)
  message(FATAL_ERROR "RINGTRAIN_NCCL=ON, but ${_ringtrain_nccl_why}. "
                      "Use -DRINGTRAIN_NCCL=AUTO or OFF to build without the NCCL backend.")
endif()
set(RINGTRAIN_WITH_NCCL ${_ringtrain_nccl_enabled} CACHE INTERNAL "NCCL backend compiled in")

if(_ringtrain_nccl_enabled)
  file(GLOB RINGTRAIN_NCCL_SOURCES CONFIGURE_DEPENDS
    ${CMAKE_CURRENT_SOURCE_DIR}/collectives/nccl_*.cpp)
  target_sources(ringtrain PRIVATE ${RINGTRAIN_NCCL_SOURCES})
  # Plain paths rather than imported targets: an installed ringtrain package then needs no
  # find_package(CUDAToolkit) of its own. PUBLIC: collectives/nccl_communicator.h includes
  # the CUDA and NCCL headers, and the definition tells tests and users what this build holds.
  # NCCL's headers may sit inside the source tree (the project's venv): an exported target
  # cannot name such a path, so the installed package adds it (ringtrainConfig.cmake.in).
  # NCCL's first: the toolkit may ship an nccl.h of another version than the NCCL linked.
  target_include_directories(ringtrain SYSTEM PUBLIC $<BUILD_INTERFACE:${NCCL_INCLUDE_DIR}>
                                                     ${CUDAToolkit_INCLUDE_DIRS})
  # Likewise the CUDA runtime: a pip-installed LibTorch loads its wheel's libcudart
  # (nvidia/cu13/lib for CUDA 13 wheels, nvidia/cuda_runtime/lib for CUDA 12 ones), which
  # may be newer than the toolkit's; one soname, so link the one LibTorch needs
  # (cmake/torch_wheel_cuda.cmake points LibTorch's own link interface at it too, and .ci/run
  # checks with ldd what the binary loads).
  file(GLOB _ringtrain_wheel_cudart
       "${TORCH_INSTALL_PREFIX}/../nvidia/cu[0-9]*/lib/libcudart.so.[0-9]*"
       "${TORCH_INSTALL_PREFIX}/../nvidia/cuda_runtime/lib/libcudart.so.[0-9]*")
  set(RINGTRAIN_CUDART_LIBRARY ${CUDA_cudart_LIBRARY})
  if(_ringtrain_wheel_cudart)
    list(GET _ringtrain_wheel_cudart 0 RINGTRAIN_CUDART_LIBRARY)
    get_filename_component(RINGTRAIN_CUDART_LIBRARY "${RINGTRAIN_CUDART_LIBRARY}" REALPATH)
  endif()
  target_link_libraries(ringtrain PUBLIC ${RINGTRAIN_CUDART_LIBRARY} ${NCCL_LIBRARY})
  target_compile_definitions(ringtrain PUBLIC RINGTRAIN_WITH_NCCL=1)
  # With a CUDA LibTorch, the communicator orders its stream after LibTorch's current stream;
  # a CPU-only LibTorch (Debian's) ships the c10/cuda headers but not libc10_cuda, so the
  # headers alone cannot tell: ask the imported targets instead.
  if(RINGTRAIN_TORCH_HAS_CUDA)
    target_compile_definitions(ringtrain PRIVATE RINGTRAIN_TORCH_CUDA=1)
    set(_ringtrain_torch_kind "CUDA LibTorch")
  else()
    set(_ringtrain_torch_kind "CPU-only LibTorch: the backend builds but cannot run")
  endif()
  file(STRINGS "${NCCL_INCLUDE_DIR}/nccl.h" _ringtrain_nccl_defines
       REGEX "^#define NCCL_(MAJOR|MINOR|PATCH) [0-9]+")
  string(REGEX REPLACE "[^0-9;]" "" _ringtrain_nccl_version "${_ringtrain_nccl_defines}")
  string(REPLACE ";" "." _ringtrain_nccl_version "${_ringtrain_nccl_version}")
  message(STATUS "ringtrain: NCCL backend ON (NCCL ${_ringtrain_nccl_version}: ${NCCL_LIBRARY}; "
                 "CUDA ${CUDAToolkit_VERSION} headers, runtime ${RINGTRAIN_CUDART_LIBRARY}; "
                 "${_ringtrain_torch_kind})")
else()
  if(_ringtrain_nccl_mode STREQUAL "OFF")
    set(_ringtrain_nccl_why "RINGTRAIN_NCCL=OFF")
  endif()
  message(STATUS "ringtrain: NCCL backend OFF (${_ringtrain_nccl_why})")
endif()
