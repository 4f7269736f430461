# Helpers shared by every module.
#
# coffer_module(NAME SOURCES a.cc b.cc DEPS coffer_base ...)
#   Builds static library coffer_NAME and records it so the CLI links it.
# coffer_test(NAME SOURCES a_test.cc DEPS coffer_NAME [LABELS unit|sweep|slow|net] [TIMEOUT s])
#   Builds one GoogleTest executable and registers each test with ctest (label "unit" by default).
function(coffer_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
  add_library(coffer_${name} STATIC ${M_SOURCES})
  target_link_libraries(coffer_${name} PUBLIC ${M_DEPS})
  set_property(GLOBAL APPEND PROPERTY COFFER_MODULES coffer_${name})
endfunction()

function(coffer_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT COFFER_TESTS)
    return()
  endif()
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    COFFER_VECTORS_DIR="${PROJECT_SOURCE_DIR}/../shared/vectors"
    COFFER_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    COFFER_BINARY_DIR="${PROJECT_BINARY_DIR}")
  gtest_discover_tests(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
                       DISCOVERY_TIMEOUT 60)
endfunction()
