# Shared CMake helpers: one warnings policy, one way to build an agent, one way to add a test.

function(stockade_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wformat=2
    $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor -Wold-style-cast>)
  if(STOCKADE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# stockade_add_agent(NAME SOURCES a.cpp ... [LIBS lib ...] [INCLUDES dir ...] [NO_INSTALL] [RUNS_FOREIGN]
#                    [OUTPUT_DIR dir])
# Builds NAME.so (cmake/StockadeAgent.cmake, the same rules out-of-tree agents get from stockade-dev).
# Agents link only their own heavy dependency (never libstockade), so one broken library cannot
# break every agent.
#
# Front-ends learn the agents from global properties set here (never by reading other folders'
# CMakeLists), read after every agents/ folder has been added (see the top-level CMakeLists):
#   STOCKADE_AGENTS            agents built into the build tree's agent folder (fence_stockade_<NAME>
#                              links in the build tree); an agent with OUTPUT_DIR (a test agent) is
#                              in none of these lists
#   STOCKADE_INSTALLED_AGENTS  those also installed (NO_INSTALL: the sim agent, build tree only)
#   STOCKADE_FOREIGN_RUNNERS   RUNS_FOREIGN agents: they run another framework's agents (fence-agents
#                              programs, cluster-glue plugins), so they are not republished as one
set(STOCKADE_AGENT_INCLUDE_DIR ${PROJECT_SOURCE_DIR}/core/include)
set(STOCKADE_AGENT_VERSION_SCRIPT ${PROJECT_SOURCE_DIR}/cmake/agent.map)
include(StockadeAgent)

function(stockade_add_agent name)
  cmake_parse_arguments(A "NO_INSTALL;RUNS_FOREIGN" "OUTPUT_DIR" "SOURCES;LIBS;INCLUDES" ${ARGN})
  set(target stockade_agent_${name})
  stockade_agent_module(${target} ${name} SOURCES ${A_SOURCES} LIBS ${A_LIBS} INCLUDES ${A_INCLUDES})
  if(A_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${A_OUTPUT_DIR})
  else()
    set_target_properties(${target} PROPERTIES
      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/${STOCKADE_AGENT_DIR})
    set_property(GLOBAL APPEND PROPERTY STOCKADE_AGENTS ${name})
    if(A_RUNS_FOREIGN)
      set_property(GLOBAL APPEND PROPERTY STOCKADE_FOREIGN_RUNNERS ${name})
    endif()
  endif()
  stockade_set_warnings(${target})
  # Parameter tables and descriptors are designated initializers that leave unused fields out
  # (zero/NULL by the language); g++ before 14 warns about that in C++ (GCC PR c++/96868).
  target_compile_options(${target} PRIVATE
    $<$<AND:$<COMPILE_LANG_AND_ID:CXX,GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,14>>:-Wno-missing-field-initializers>)
  if(NOT A_NO_INSTALL AND NOT A_OUTPUT_DIR)
    install(TARGETS ${target} LIBRARY DESTINATION ${STOCKADE_AGENT_DIR} COMPONENT runtime)
    set_property(GLOBAL APPEND PROPERTY STOCKADE_INSTALLED_AGENTS ${name})
  endif()
endfunction()

# stockade_add_support_library(NAME SOURCES a.cpp ... [LIBS ...] [PRIVATE_LIBS ...])
# A small static PIC library that libstockade and agents both link (agents never link
# libstockade): target stockade_NAME, alias stockade::NAME, the core's public headers.  Keep its
# dependencies light: whatever it links, every agent that uses it links too.
function(stockade_add_support_library name)
  cmake_parse_arguments(L "" "" "SOURCES;LIBS;PRIVATE_LIBS" ${ARGN})
  set(target stockade_${name})
  add_library(${target} STATIC ${L_SOURCES})
  add_library(stockade::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON
    C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/core/include> $<INSTALL_INTERFACE:include>)
  target_link_libraries(${target} PUBLIC ${L_LIBS} PRIVATE ${L_PRIVATE_LIBS})
  stockade_set_warnings(${target})
endfunction()

# stockade_add_test(NAME SOURCES a.cpp ... [LIBS ...] [LABELS ...] [TIMEOUT s] [DEPENDS target...]
#                   [RESOURCE_LOCK name])
# A Catch2 v2 test executable registered with ctest; the environment points the loader at the
# build tree's agents and agent host.  DEPENDS: what the test runs (agents, host, front-ends).
function(stockade_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT;RESOURCE_LOCK" "SOURCES;LIBS;LABELS;DEPENDS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/bin)
  target_link_libraries(${name} PRIVATE stockade_test_main stockade::core ${T_LIBS})
  stockade_set_warnings(${name})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}"
    ENVIRONMENT "${STOCKADE_TEST_ENV}")
  if(T_RESOURCE_LOCK)
    set_tests_properties(${name} PROPERTIES RESOURCE_LOCK ${T_RESOURCE_LOCK})
  endif()
  if(T_DEPENDS)
    add_dependencies(${name} ${T_DEPENDS})
  endif()
endfunction()

# stockade_add_fixture(NAME SOURCES a.cpp ... [LIBS ...])
# A static library of test set-up (a real peer started and stopped by PID) shared by an agent's
# tests, other folders' tests and bench/; its folder's tests/ (tests/support for the fixtures of
# tests/CMakeLists.txt) is on the include path.
function(stockade_add_fixture name)
  cmake_parse_arguments(F "" "" "SOURCES;LIBS" ${ARGN})
  add_library(${name} STATIC ${F_SOURCES})
  if(CMAKE_CURRENT_SOURCE_DIR STREQUAL "${PROJECT_SOURCE_DIR}/tests")
    target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/support)
  else()
    target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/tests)
  endif()
  target_link_libraries(${name} PUBLIC stockade::core ${F_LIBS})
  stockade_set_warnings(${name})
endfunction()

# stockade_add_bench(NAME SOURCES a.cpp ... [LIBS ...] [DEPENDS target...])
# A benchmark driver in build/bench (not a test: bench/*.sh runs it and prints the ratio table).
function(stockade_add_bench name)
  cmake_parse_arguments(B "" "" "SOURCES;LIBS;DEPENDS" ${ARGN})
  add_executable(${name} ${B_SOURCES})
  target_link_libraries(${name} PRIVATE stockade::core ${B_LIBS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
  stockade_set_warnings(${name})
  if(B_DEPENDS)
    add_dependencies(${name} ${B_DEPENDS})
  endif()
endfunction()
