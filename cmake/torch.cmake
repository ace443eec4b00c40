# Finds LibTorch: the project's venv (launch/setup.sh), a PyTorch install or LibTorch zip
# named by CMAKE_PREFIX_PATH / Torch_DIR, or Debian's libtorch-dev 1.13 in the system paths.
#
# LibTorch's TorchConfig.cmake finds libc10 (and libtorch, for its "Found" line) with a
# plain find_library, whose system paths come before its PATHS hint: on a machine that also
# has Debian's libtorch-dev, a 2.x build would link 1.13's libc10.so beside 2.x's libtorch.
# After find_package the libraries it found by name are pinned to the LibTorch whose config
# was read, and configure fails if they cannot be.
#
# Results: Torch_VERSION, TORCH_INSTALL_PREFIX, RINGTRAIN_TORCH_LIBDIR (the directory of
# libtorch_cpu.so) and RINGTRAIN_TORCH_HAS_CUDA (libc10_cuda is part of this LibTorch).

find_package(Torch REQUIRED)

# Debian splits LibTorch over /usr/lib/<triplet> and /usr/share/cmake; a zip or a wheel keeps
# its libraries in ${TORCH_INSTALL_PREFIX}/lib.
if(EXISTS "${TORCH_INSTALL_PREFIX}/lib/libtorch_cpu.so")
  set(RINGTRAIN_TORCH_LIBDIR "${TORCH_INSTALL_PREFIX}/lib")
  foreach(_var c10_LIBRARY C10_CUDA_LIBRARY TORCH_LIBRARY kineto_LIBRARY)
    if(NOT ${_var} OR ${_var} MATCHES "^${RINGTRAIN_TORCH_LIBDIR}/")
      continue()
    endif()
    get_filename_component(_name "${${_var}}" NAME)
    set(_pinned "${RINGTRAIN_TORCH_LIBDIR}/${_name}")
    if(NOT EXISTS "${_pinned}")
      message(FATAL_ERROR "LibTorch at ${TORCH_INSTALL_PREFIX} has no ${_name}, and "
                          "${${_var}} belongs to another LibTorch. HINT: point "
                          "CMAKE_PREFIX_PATH at a complete LibTorch.")
    endif()
    list(TRANSFORM TORCH_LIBRARIES REPLACE "^${${_var}}$" "${_pinned}")
    set(${_var} "${_pinned}" CACHE FILEPATH "pinned to ${TORCH_INSTALL_PREFIX}" FORCE)
  endforeach()
else()
  get_filename_component(RINGTRAIN_TORCH_LIBDIR "${c10_LIBRARY}" DIRECTORY)
endif()

set(RINGTRAIN_TORCH_HAS_CUDA OFF)
if(TARGET c10_cuda OR TARGET torch_cuda OR C10_CUDA_LIBRARY)
  set(RINGTRAIN_TORCH_HAS_CUDA ON)
endif()
set(_ringtrain_torch_kind "CPU")
if(RINGTRAIN_TORCH_HAS_CUDA)
  set(_ringtrain_torch_kind "CUDA")
endif()
message(STATUS "ringtrain: LibTorch ${Torch_VERSION} (${_ringtrain_torch_kind}) from "
               "${RINGTRAIN_TORCH_LIBDIR}")

# LibTorch 2.x headers need C++20 (its `torch` target says so); 1.13's need C++17. One
# standard for the whole project, so that probes (try_compile) see what the targets see.
get_target_property(_ringtrain_torch_features torch INTERFACE_COMPILE_FEATURES)
if(_ringtrain_torch_features MATCHES "cxx_std_20")
  set(CMAKE_CXX_STANDARD 20)
endif()

# A pip-installed LibTorch's CUDA libraries: the wheel's, not the machine's toolkit's.
include(${CMAKE_CURRENT_LIST_DIR}/torch_wheel_cuda.cmake)
