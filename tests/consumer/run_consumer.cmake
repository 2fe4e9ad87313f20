# ctest driver: builds and runs the consumer project in MODE (find_package | add_subdirectory), or the
# engine-integration example against the installed package (engine_example).
# Inputs: MODE SOURCE_DIR BUILD_DIR WORK_DIR CXX_COMPILER CUDA_COMPILER.
cmake_minimum_required(VERSION 3.24)
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGV}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

set(configure_args -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_CUDA_COMPILER=${CUDA_COMPILER}
                   -DCMAKE_BUILD_TYPE=Release)
if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix")
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer/find_package" -B "${WORK_DIR}/build"
      ${configure_args} -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
elseif(MODE STREQUAL "engine_example")  # examples/engine_integration, a standalone find_package project
  run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix")
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/examples/engine_integration" -B "${WORK_DIR}/build"
      ${configure_args} -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
  set(EXECUTABLE engine_integration)
elseif(MODE STREQUAL "add_subdirectory")
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer/add_subdirectory" -B "${WORK_DIR}/build"
      ${configure_args} -DDSV4KV_SOURCE_DIR=${SOURCE_DIR})
else()
  message(FATAL_ERROR "unknown MODE '${MODE}'")
endif()
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build" --parallel 2)
if(NOT DEFINED EXECUTABLE)
  set(EXECUTABLE consumer)
endif()
run("${WORK_DIR}/build/${EXECUTABLE}")
