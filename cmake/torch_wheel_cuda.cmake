# Included after find_package(Torch), by ringtrain's own build and by its installed package
# (so that a user's project linking ringtrain::ringtrain gets the same run paths). It works
# on the including scope's variables: TORCH_INSTALL_PREFIX, TORCH_LIBRARIES.
#
# A pip-installed LibTorch loads the CUDA libraries of its own wheels (nvidia/cu13/lib, or
# nvidia/<part>/lib for CUDA 12), but its link interface names CUDA::cudart and CUDA::nvrtc,
# and TORCH_LIBRARIES a plain libnvrtc path, which its FindCUDAToolkit resolves to whichever
# toolkit the machine has. Two directories holding libcudart.so.13 make a cycle among the
# run paths, which CMake breaks in no fixed order: on one machine the toolkit's directory
# came first and the binary loaded its libcudart. Point all of them at the wheel's copies,
# so that one directory holds each soname.
if((TARGET c10_cuda OR TARGET torch_cuda) AND EXISTS "${TORCH_INSTALL_PREFIX}/../nvidia")
  foreach(_lib cudart nvrtc)
    file(GLOB _wheel_copy "${TORCH_INSTALL_PREFIX}/../nvidia/*/lib/lib${_lib}.so.[0-9]*")
    list(FILTER _wheel_copy EXCLUDE REGEX "builtins")
    if(NOT _wheel_copy)
      continue()
    endif()
    list(GET _wheel_copy 0 _wheel_copy)
    get_filename_component(_wheel_copy "${_wheel_copy}" REALPATH)
    if(TARGET CUDA::${_lib})
      set_property(TARGET CUDA::${_lib} PROPERTY IMPORTED_LOCATION "${_wheel_copy}")
    endif()
    foreach(_toolkit_copy IN ITEMS "${CUDA_${_lib}_LIBRARY}" "${CUDA_NVRTC_LIB}")
      if(_toolkit_copy AND (_lib STREQUAL "nvrtc" OR NOT _toolkit_copy STREQUAL CUDA_NVRTC_LIB))
        list(TRANSFORM TORCH_LIBRARIES REPLACE "^${_toolkit_copy}$" "${_wheel_copy}")
      endif()
    endforeach()
    if(_lib STREQUAL "nvrtc" AND TARGET caffe2::nvrtc_runtime)
      set_property(TARGET caffe2::nvrtc_runtime PROPERTY INTERFACE_LINK_LIBRARIES
                                                         "${_wheel_copy}")
    endif()
  endforeach()
endif()
