# Warnings on for project code; third-party headers come in as SYSTEM includes and stay quiet.
function(framesmith_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endfunction()
