# Turns a text file into a C string constant:
#   cmake -DIN= -DOUT= -DSYMBOL= [-DLIB=] -P embed.cmake
# LIB, when set, is a Lua chunk returning a table; it is placed in front of
# IN as `local R = (function() <LIB> end)()`.
file(READ ${IN} content)
if(LIB)
  file(READ ${LIB} lib)
  set(content "local R = (function()\n${lib}\nend)()\n${content}")
endif()
string(REPLACE "\\" "\\\\" content "${content}")
string(REPLACE "\"" "\\\"" content "${content}")
string(REPLACE "\n" "\\n\"\n\"" content "${content}")
file(WRITE ${OUT} "/* generated from ${IN}; do not edit */\nconst char ${SYMBOL}[] = \"${content}\";\n")
