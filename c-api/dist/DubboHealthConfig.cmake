# CMake package for the dubbo-health C library.
#
#   find_package(DubboHealth REQUIRED)
#   target_link_libraries(app PRIVATE DubboHealth::dubbo_health)         # shared library
#   target_link_libraries(app PRIVATE DubboHealth::dubbo_health_static)  # static library
#
# Relocatable: paths are computed from this file's location (<prefix>/lib/cmake/DubboHealth).
get_filename_component(_dh_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

find_package(Threads REQUIRED)

if(NOT TARGET DubboHealth::dubbo_health)
  add_library(DubboHealth::dubbo_health SHARED IMPORTED)
  set_target_properties(DubboHealth::dubbo_health PROPERTIES
    IMPORTED_LOCATION "${_dh_prefix}/lib/libdubbo_health.so"
    IMPORTED_SONAME "libdubbo_health.so.0"
    INTERFACE_INCLUDE_DIRECTORIES "${_dh_prefix}/include")
endif()

if(NOT TARGET DubboHealth::dubbo_health_static)
  add_library(DubboHealth::dubbo_health_static STATIC IMPORTED)
  set_target_properties(DubboHealth::dubbo_health_static PROPERTIES
    IMPORTED_LOCATION "${_dh_prefix}/lib/libdubbo_health.a"
    INTERFACE_INCLUDE_DIRECTORIES "${_dh_prefix}/include"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;gcc_s;util;rt;m;dl")
endif()

set(DubboHealth_INCLUDE_DIRS "${_dh_prefix}/include")
set(DubboHealth_LIBRARIES DubboHealth::dubbo_health)
set(DubboHealth_FOUND TRUE)
unset(_dh_prefix)
