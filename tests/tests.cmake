# Tests (STYLE.md "Tests"): ctest labels unit, integration, e2e, fault, load.

# unit: every tests/unit/test_*.c is one program built on tests/test.h
file(GLOB MESH_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${MESH_UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE mesh_store mesh_views mesh_replay mesh_proxy mesh_lib)
  add_test(NAME unit.${name} COMMAND ${name})
  set_tests_properties(unit.${name} PROPERTIES LABELS unit TIMEOUT 120)
endforeach()

# fuzz targets: tests/fuzz/fuzz_NAME.c defines LLVMFuzzerTestOneInput. Each is
# always built with a plain driver that replays tests/fuzz/corpus/NAME/ as a
# ctest case (SQLite's fuzzcheck); with -DMESH_FUZZ=ON (clang) also as a
# libFuzzer binary fuzz_NAME for long runs.

# MESH_FUZZ_LIBS_<target>: what a target links besides mesh_replay and mesh_lib.
set(MESH_FUZZ_LIBS_proxy_h1 mesh_proxy)
set(MESH_FUZZ_LIBS_proxy_h2 mesh_proxy)
set(MESH_FUZZ_LIBS_report mesh_store)
set(MESH_FUZZ_LIBS_inject mesh_kube)
file(GLOB MESH_FUZZ_TARGETS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
foreach(src ${MESH_FUZZ_TARGETS})
  get_filename_component(name ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" target ${name})
  add_executable(${name}_replay ${src} ${CMAKE_SOURCE_DIR}/tests/fuzz/driver.c)
  target_link_libraries(${name}_replay PRIVATE ${MESH_FUZZ_LIBS_${target}} mesh_replay mesh_lib)
  add_test(NAME fuzz.${target}
           COMMAND ${name}_replay ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${target})
  set_tests_properties(fuzz.${target} PROPERTIES LABELS unit TIMEOUT 300)
  if(MESH_FUZZ)
    add_executable(${name} ${src})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${name} PRIVATE ${MESH_FUZZ_LIBS_${target}} mesh_replay mesh_lib)
  endif()
endforeach()

# failing-allocation runs (STYLE.md "Tests"): tests/unit/failmalloc.c replaces
# malloc for the whole process, so not with ASan's allocator (MESH_SANITIZE)
# nor in the libFuzzer build.
if(NOT MESH_SANITIZE AND NOT MESH_FUZZ)
  add_executable(failmalloc ${CMAKE_SOURCE_DIR}/tests/unit/failmalloc.c)
  target_include_directories(failmalloc PRIVATE ${CMAKE_SOURCE_DIR}/tests/fuzz)
  target_link_libraries(failmalloc PRIVATE mesh_store mesh_kube mesh_proxy mesh_lib)
  add_test(NAME unit.failmalloc COMMAND failmalloc)
  set_tests_properties(unit.failmalloc PROPERTIES LABELS "unit;failmalloc" TIMEOUT 300)
endif()

# integration and e2e: shell scripts that drive the real binaries. Each gets
# the build directory, the source directory and ../shared as arguments.
set(MESH_SHARED ${CMAKE_SOURCE_DIR}/../shared CACHE PATH "the shared/ folder beside the checkout")
file(GLOB MESH_SCRIPT_TESTS CONFIGURE_DEPENDS
     ${CMAKE_SOURCE_DIR}/tests/integration/*.sh ${CMAKE_SOURCE_DIR}/tests/e2e/*.sh
     ${CMAKE_SOURCE_DIR}/tests/fault/*.sh ${CMAKE_SOURCE_DIR}/tests/load/*.sh)
foreach(script ${MESH_SCRIPT_TESTS})
  get_filename_component(name ${script} NAME_WE)
  get_filename_component(dir ${script} DIRECTORY)
  get_filename_component(label ${dir} NAME)
  add_test(NAME ${label}.${name}
           COMMAND bash ${script} ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR} ${MESH_SHARED})
  set_tests_properties(${label}.${name} PROPERTIES LABELS ${label} TIMEOUT 600
                       SKIP_RETURN_CODE 77)
endforeach()

# tools the integration tests drive
add_executable(grpc_echo ${CMAKE_SOURCE_DIR}/tests/tools/grpc_echo.c)
target_link_libraries(grpc_echo PRIVATE mesh_lib)
